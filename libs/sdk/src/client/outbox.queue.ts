import { b64uEncode, randomBytes } from '@umbra/crypto';
import type { ErrorCode, SendRequest, SendResult } from '@umbra/protocol';
import { UmbraApiError } from '../errors';
import type { LocalState } from '../state/local.state';
import { STATE_FAMILIES, STATE_KEYS } from '../state/state.keys';
import type { SocketConnection } from './socket.connection';

/** One send as kept in the outbox until the server stores it. */
export interface OutboxEntry {
  request: SendRequest;
  createdAt: number;
}

export type SendInput = Omit<SendRequest, 'clientMessageId'> & { clientMessageId?: string };

const PERMANENT_SEND_ERRORS = new Set<ErrorCode>(['DEVICE_MISMATCH', 'ACCOUNT_NOT_FOUND', 'ALREADY_EXPIRED']);
const RETRY_DELAY_MS = 100;
const RETRY_DELAY_MAX_MS = 5000;

/**
 * The persistent outbox: a send is stored first, then retried over the socket (same
 * clientMessageId, so idempotent) until the server stores it or rejects it for good.
 */
export class OutboxQueue {
  private readonly inFlight = new Map<string, Promise<SendResult>>();

  constructor(
    private readonly state: LocalState,
    private readonly connection: SocketConnection,
    private readonly now: () => number,
  ) {}

  async send(input: SendInput): Promise<SendResult> {
    const request: SendRequest = { ...input, clientMessageId: input.clientMessageId ?? b64uEncode(randomBytes(16)) };
    const entry: OutboxEntry = { request, createdAt: this.now() };
    await this.state.set(STATE_KEYS.outbox(request.clientMessageId), entry);
    return this.deliver(entry);
  }

  /** Entries left by an earlier run are retried on every (re)connect; vanished ones are dropped. */
  async flush(): Promise<void> {
    for (const id of await this.state.suffixes(STATE_FAMILIES.outbox)) {
      if (this.inFlight.has(id)) continue;
      const key = STATE_KEYS.outbox(id);
      const entry = await this.state.get(key);
      if (!entry) continue;
      if (entry.request.expiresAt && entry.request.expiresAt <= this.now()) {
        await this.state.delete(key);
        continue;
      }
      this.deliver(entry).catch(() => undefined);
    }
  }

  private deliver(entry: OutboxEntry): Promise<SendResult> {
    const id = entry.request.clientMessageId;
    const key = STATE_KEYS.outbox(id);
    const existing = this.inFlight.get(id);
    if (existing) return existing;
    const attempt = async (): Promise<SendResult> => {
      let delay = RETRY_DELAY_MS;
      for (;;) {
        if (this.connection.closed) throw new UmbraApiError(0, 'UNAVAILABLE', 'client closed; the message stays in the outbox');
        try {
          await this.connection.waitConnected();
          const result = await this.connection.emitSend(entry.request);
          await this.state.delete(key);
          return result;
        } catch (err) {
          const e = err instanceof UmbraApiError ? err : new UmbraApiError(0, 'UNAVAILABLE', String(err));
          if (!e.retryable || PERMANENT_SEND_ERRORS.has(e.code)) {
            await this.state.delete(key);
            throw e;
          }
          await new Promise((r) => setTimeout(r, delay * (0.5 + Math.random())));
          delay = Math.min(delay * 2, RETRY_DELAY_MAX_MS);
        }
      }
    };
    const p = attempt().finally(() => this.inFlight.delete(id));
    this.inFlight.set(id, p);
    return p;
  }
}

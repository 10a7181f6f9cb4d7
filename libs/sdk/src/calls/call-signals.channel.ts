import { b64uEncode, randomBytes, type Content, type SignedDeviceList } from '@umbra/crypto';
import type { CallSignalIds } from './call-log';
import { CallSignalError, callSignalFields, parseCallSignal, type CallSignal } from './call-signal';

/** A received message as the calls module needs it (Messenger's 'message' event). */
export interface CallsMessage {
  from: string;
  fromDevice: number;
  content: Content;
  sync: boolean;
  verified: boolean;
  dest?: string;
}

/** How long the servers keep a call signal for a device that is away (PROTOCOL.md §10: now + 60 s). */
export const SIGNAL_ENVELOPE_TTL_MS = 60_000;

/** What the calls module uses of Messenger: E2EE fan-out to a peer's devices (plus sync copies to ours) and receipt. */
export interface CallsMessenger {
  readonly client: {
    readonly identity: { accountIdText: string; device: { deviceId: number; certificate: Uint8Array } };
    api<T>(method: string, path: string, body?: unknown): Promise<T>;
  };
  sendContent(peer: string, content: Content, freshSessions?: Set<string>, envelope?: { expiresAt?: number; urgent?: boolean }): Promise<{ clientMessageId: string }>;
  deviceList(accountIdText: string): Promise<SignedDeviceList>;
  on(event: 'message', handler: (m: CallsMessage) => void): void;
}

/** A call message from a verified device, parsed; `own` when another device of this account sent it. */
export type ReceivedSignal = { signal: CallSignal; source: 'own' | 'peer' } | { ignored: string; callId: string | undefined };

/**
 * Call signals over Messenger (§10): out as short-lived E2EE envelopes, each remembered so that its
 * expiry receipt is not shown as a vanished message; in parsed and checked against the verified list.
 */
export class CallSignalChannel {
  constructor(
    private readonly messenger: CallsMessenger,
    private readonly sentIds: CallSignalIds,
    private readonly now: () => number,
  ) {}

  /** This account's id. */
  get me(): string {
    return this.messenger.client.identity.accountIdText;
  }

  /** `urgent`: the servers wake the recipient's devices that are not connected (a call's first offer). */
  async send(to: string, signal: CallSignal, opts: { urgent?: boolean } = {}): Promise<void> {
    const content: Content = { v: 1, id: b64uEncode(randomBytes(16)), ts: this.now(), ...callSignalFields(signal) };
    // The servers drop a signal a device has not fetched within a minute.
    const sent = await this.messenger.sendContent(to, content, undefined, { expiresAt: this.now() + SIGNAL_ENVELOPE_TTL_MS, ...(opts.urgent ? { urgent: true } : {}) });
    await this.sentIds.add(sent.clientMessageId);
  }

  receive(m: CallsMessage): ReceivedSignal {
    let signal: CallSignal;
    try {
      signal = parseCallSignal(m.content);
    } catch (err) {
      if (err instanceof CallSignalError) return { ignored: `malformed call signal: ${err.message}`, callId: undefined };
      throw err;
    }
    if (!m.verified) return { ignored: `${signal.op} from a device outside the sender's verified list`, callId: signal.call_id };
    return { signal, source: m.from === this.me ? 'own' : 'peer' };
  }
}

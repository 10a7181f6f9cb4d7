import type { Socket } from 'socket.io-client';
import { ClientEvent, type ClientToServerEvents, type DeliveredEnvelope, type ServerToClientEvents } from '@umbra/protocol';
import type { ClientHandlers } from './client.handlers';
import type { SeenWindow } from './seen.window';

export type ClientSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/** After an envelope could not be stored, the socket reconnects (so the server drains it again) after this, doubling up to the max. */
const REDRAIN_DELAY_MS = 1000;
const REDRAIN_DELAY_MAX_MS = 60_000;
const ACK_BATCH = 200;
const ACK_DELAY_MS = 5;

/**
 * What arrives on the socket, handled in order: envelopes go to the message handlers and are
 * acknowledged once all of them resolved (at-least-once, de-duplicated by the SeenWindow).
 */
export class InboxReceiver {
  private chain: Promise<void> = Promise.resolve();
  private ackBuffer: string[] = [];
  private ackTimer: ReturnType<typeof setTimeout> | undefined;
  private redrainTimer: ReturnType<typeof setTimeout> | undefined;
  private redrainDelay = REDRAIN_DELAY_MS;

  constructor(
    private readonly handlers: ClientHandlers,
    private readonly seen: SeenWindow,
    private readonly socket: () => ClientSocket | undefined,
    private readonly closed: () => boolean,
  ) {}

  /** Runs `task` after everything received before it. */
  enqueue(task: () => void | Promise<void>): void {
    this.chain = this.chain.then(task);
  }

  messages(messages: DeliveredEnvelope[]): void {
    this.enqueue(() => this.receive(messages));
  }

  /**
   * Hands each envelope to the message handlers and acks it only when all of them resolved, i.e.
   * its result is stored. One that a handler could not store stays queued, and the socket
   * reconnects after a backoff so the server drains it again; the others are not held up.
   */
  private async receive(messages: DeliveredEnvelope[]): Promise<void> {
    let failed = false;
    for (const env of messages) {
      const key = `${env.senderAccountId ?? '-'}:${env.senderDeviceId ?? 0}:${env.clientMessageId}`;
      if (!this.seen.has(key)) {
        try {
          for (const h of this.handlers.message) await h(env);
        } catch (err) {
          failed = true;
          for (const h of this.handlers.receiveError) h(err, env);
          continue;
        }
        this.seen.remember(key);
      }
      this.queueAck(env.id);
    }
    this.seen.persistSoon();
    if (failed) this.scheduleRedrain();
    else this.redrainDelay = REDRAIN_DELAY_MS;
  }

  private scheduleRedrain(): void {
    if (this.redrainTimer || this.closed()) return;
    const delay = this.redrainDelay;
    this.redrainDelay = Math.min(delay * 2, REDRAIN_DELAY_MAX_MS);
    this.redrainTimer = setTimeout(() => {
      this.redrainTimer = undefined;
      const socket = this.socket();
      if (this.closed() || !socket?.connected) return;
      this.enqueue(() => {
        this.flushAcks();
        socket.disconnect();
        if (!this.closed()) socket.connect();
      });
    }, delay * (0.5 + Math.random()));
  }

  private queueAck(id: string): void {
    this.ackBuffer.push(id);
    if (this.ackBuffer.length >= ACK_BATCH) this.flushAcks();
    else if (!this.ackTimer) this.ackTimer = setTimeout(() => this.flushAcks(), ACK_DELAY_MS);
  }

  private flushAcks(): void {
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    const ids = this.ackBuffer;
    this.ackBuffer = [];
    const socket = this.socket();
    if (ids.length > 0 && socket?.connected) socket.emit(ClientEvent.Ack, { ids });
  }

  /** Waits for received envelopes to be handled and acknowledged. */
  async settle(): Promise<void> {
    await this.chain;
    this.flushAcks();
  }

  stopRedrain(): void {
    if (this.redrainTimer) clearTimeout(this.redrainTimer);
    this.redrainTimer = undefined;
  }
}

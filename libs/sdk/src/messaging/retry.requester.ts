import type { DeliveredEnvelope } from '@umbra/protocol';
import { newId, type MessagingContext } from './messaging.context';
import type { PairwiseSender } from './pairwise.sender';

/** At most one retry request per sender device in this long, so two broken peers cannot loop. */
const RETRY_INTERVAL_MS = 60_000;

/**
 * A message we cannot decrypt means our session with that device is broken: start a fresh one to
 * it and send Content{k:"retry"} (§5). The peer's next message then uses the new session.
 */
export class RetryRequester {
  private readonly lastRetry = new Map<string, number>();

  constructor(
    private readonly ctx: MessagingContext,
    private readonly pairwise: PairwiseSender,
  ) {}

  async request(env: DeliveredEnvelope): Promise<void> {
    if (!env.senderAccountId || env.senderDeviceId === null) return;
    const key = `${env.senderAccountId}:${env.senderDeviceId}`;
    const now = this.ctx.now();
    if (now - (this.lastRetry.get(key) ?? 0) < RETRY_INTERVAL_MS) return;
    this.lastRetry.set(key, now);
    await this.pairwise.send(env.senderAccountId, { v: 1, id: newId(), ts: now, k: 'retry', device: env.senderDeviceId, failed: env.clientMessageId }, new Set([key]));
  }
}

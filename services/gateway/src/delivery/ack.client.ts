import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import { ApiError, Batcher, DeviceQueueRepository, LOGGER, Metrics, type AuthContext, type DeviceAddress, type Logger } from '@umbra/server';

interface AckItem {
  recipient: DeviceAddress;
  seqs: string[];
  /** Set for a REST ack, which answers once its rows are deleted. */
  settle?: (err?: unknown) => void;
}

/** Acks of every socket on this gateway are gathered this long into one DELETE (or until MAX_IDS). */
export const ACK_WINDOW_MS = 20;
const MAX_IDS = 2000;
/** A failed delete is tried again once after this long; after that the rows come again with a later drain. */
const RETRY_MS = 250;

/**
 * Deletes acknowledged envelopes, gathering the acks of every socket on this gateway for
 * ACK_WINDOW_MS into one statement: a delete costs Postgres about the same for one row as for
 * dozens, and nobody waits on a socket ack. A REST ack answers once its rows are gone.
 * Acks used to travel as BullMQ jobs to message-relay: a job (three Redis scripts and a relay
 * wake-up) per batch, for a delete the gateway can make itself.
 * A lost ack only means a redelivery, which clients de-duplicate.
 */
@Injectable()
export class AckClient implements OnModuleDestroy {
  private readonly batcher: Batcher<AckItem>;
  private readonly retries = new Set<NodeJS.Timeout>();

  constructor(
    @Inject(DeviceQueueRepository) private readonly queues: DeviceQueueRepository,
    @Inject(Metrics) private readonly metrics: Metrics,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    this.batcher = new Batcher<AckItem>(MAX_IDS, ACK_WINDOW_MS, (items) => this.delete(items), (err, items) => this.failed(err, items), { window: true });
  }

  /** A socket ack: deleted within ACK_WINDOW_MS. */
  ack(auth: AuthContext, ids: string[]): void {
    if (ids.length > 0) this.batcher.add({ recipient: { accountId: auth.accountId, deviceId: auth.deviceId }, seqs: ids });
  }

  /** A REST ack: resolves once the rows are deleted; UNAVAILABLE when the database is not answering. */
  ackAndWait(auth: AuthContext, ids: string[]): Promise<void> {
    if (ids.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const settle = (err?: unknown) => (err === undefined ? resolve() : reject(new ApiError('UNAVAILABLE', 'could not delete the acknowledged envelopes; retry')));
      this.batcher.add({ recipient: { accountId: auth.accountId, deviceId: auth.deviceId }, seqs: ids, settle });
    });
  }

  private async delete(items: AckItem[]): Promise<void> {
    this.metrics.messagesAcked.inc(await this.queues.ack(items));
    for (const i of items) i.settle?.();
  }

  private failed(err: unknown, items: AckItem[], retried = false): void {
    const waiting = items.filter((i) => i.settle);
    for (const i of waiting) i.settle!(err);
    const rest = items.filter((i) => !i.settle);
    if (rest.length === 0) return;
    if (retried) {
      this.logger.warn({ err: String(err), items: rest.length }, 'could not delete acknowledged envelopes; they will be delivered again');
      return;
    }
    const timer = setTimeout(() => {
      this.retries.delete(timer);
      this.delete(rest).catch((e: unknown) => this.failed(e, rest, true));
    }, RETRY_MS);
    timer.unref();
    this.retries.add(timer);
  }

  async onModuleDestroy(): Promise<void> {
    for (const t of this.retries) clearTimeout(t);
    await this.batcher.drain();
  }
}

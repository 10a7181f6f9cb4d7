import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import { APP_CONFIG, Batcher, Jobs, LOGGER, QueueRegistry, Queues, type AckBatchJob, type AppConfig, type AuthContext, type Logger } from '@umbra/server';

type AckItem = AckBatchJob['items'][number];

/** Batches acknowledgements into BullMQ `ack` jobs; message-relay deletes the rows. */
@Injectable()
export class AckClient implements OnModuleDestroy {
  private readonly batcher: Batcher<AckItem>;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    @Inject(QueueRegistry) queues: QueueRegistry,
    @Inject(LOGGER) logger: Logger,
  ) {
    this.batcher = new Batcher<AckItem>(
      500,
      Math.max(config.RELAY_BATCH_WAIT_MS, 5),
      (items) => queues.add(Queues.ack, Jobs.ackBatch, { items } satisfies AckBatchJob),
      // A lost ack only means a redelivery, which clients de-duplicate.
      (err, items) => logger.warn({ err: String(err), items: items.length }, 'could not enqueue acks'),
    );
  }

  ack(auth: AuthContext, ids: string[]): void {
    this.batcher.add({ account: auth.accountId.toString('hex'), deviceId: auth.deviceId, seqs: ids.map(Number) });
  }

  async onModuleDestroy(): Promise<void> {
    await this.batcher.drain();
  }
}

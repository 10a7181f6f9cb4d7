import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { APP_CONFIG, AttachmentReaper, DatabaseClock, LOGGER, PeriodicTask, type AppConfig, type Logger } from '@umbra/server';

/**
 * On a timer in every instance: aborts uploads unfinished past their deadline and deletes
 * attachments past their expiry or the maximum retention, bytes first, in bounded batches. "Now" is
 * the database's (DatabaseClock), so a node whose clock runs fast deletes nothing early.
 */
@Injectable()
export class AttachmentCleanupService implements OnModuleInit, OnModuleDestroy {
  private readonly task: PeriodicTask<number>;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    @Inject(LOGGER) logger: Logger,
    @Inject(DatabaseClock) clock: DatabaseClock,
    @Inject(AttachmentReaper) reaper: AttachmentReaper,
  ) {
    this.task = new PeriodicTask(
      async () => reaper.reapAll(await clock.now(), config.ATTACHMENT_REAP_BATCH),
      config.ATTACHMENT_REAP_INTERVAL_MS,
      (err) => logger.error({ err: String(err) }, 'attachment cleanup failed'),
    );
  }

  onModuleInit(): void {
    this.task.start();
  }

  /** One full pass (also what tests call after moving the clock); returns how many were deleted. */
  runOnce(): Promise<number> {
    return this.task.run();
  }

  async onModuleDestroy(): Promise<void> {
    await this.task.stop();
  }
}

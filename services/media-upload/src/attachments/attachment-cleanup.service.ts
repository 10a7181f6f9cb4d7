import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { APP_CONFIG, AttachmentReaper, Clock, LOGGER, type AppConfig, type Logger } from '@umbra/server';

/**
 * On a timer in every instance: aborts uploads unfinished past their deadline and deletes
 * attachments past their expiry or the maximum retention, bytes first, in bounded batches.
 */
@Injectable()
export class AttachmentCleanupService implements OnModuleInit, OnModuleDestroy {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(Clock) private readonly clock: Clock,
    @Inject(AttachmentReaper) private readonly reaper: AttachmentReaper,
  ) {}

  onModuleInit(): void {
    this.timer = setInterval(() => void this.runOnce().catch((err: unknown) => this.logger.error({ err: String(err) }, 'attachment cleanup failed')), this.config.ATTACHMENT_REAP_INTERVAL_MS);
    this.timer.unref();
  }

  /** One full pass (also what tests call after moving the clock); returns how many were deleted. */
  runOnce(): Promise<number> {
    this.running ??= this.reaper.reapAll(this.clock.now(), this.config.ATTACHMENT_REAP_BATCH).finally(() => (this.running = undefined));
    return this.running;
  }

  async onModuleDestroy(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running?.catch(() => undefined);
  }
}

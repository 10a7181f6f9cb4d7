import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { APP_CONFIG, AttachmentReaper, Clock, EnvelopesRepository, ExpiryKeysRepository, LOGGER, Metrics, PeriodicTask, TokensRepository, type AppConfig, type Logger } from '@umbra/server';
import { ExpiryService } from '../expiry/expiry.service';

/**
 * Deletes, in bounded batches, every vanishing message past its expiry (with the same reports as the
 * expiry jobs), every other envelope past its deadline (read-mode deadline or maximum retention),
 * expired send records and tokens, then destroys the keys of ended expiry windows. It runs on a
 * timer in every instance and keeps no state in Redis, so a flushed Redis delays nothing by more
 * than SWEEP_INTERVAL_MS; batches of concurrent instances never overlap (SKIP LOCKED).
 */
@Injectable()
export class SweepService implements OnModuleInit, OnModuleDestroy {
  private readonly task: PeriodicTask<unknown>;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(EnvelopesRepository) private readonly envelopes: EnvelopesRepository,
    @Inject(TokensRepository) private readonly tokens: TokensRepository,
    @Inject(ExpiryKeysRepository) private readonly keys: ExpiryKeysRepository,
    @Inject(ExpiryService) private readonly expiry: ExpiryService,
    @Inject(AttachmentReaper) private readonly attachments: AttachmentReaper,
    @Inject(Clock) private readonly clock: Clock,
    @Inject(Metrics) private readonly metrics: Metrics,
  ) {
    this.task = new PeriodicTask(() => this.sweep(), config.SWEEP_INTERVAL_MS, (err) => logger.error({ err: String(err) }, 'sweep failed'));
  }

  onModuleInit(): void {
    this.task.start();
  }

  /** One full pass; returns what it deleted. */
  async sweep(): Promise<{ messages: number; envelopes: number; sends: number; tokens: number; keys: number; attachments: number }> {
    const now = this.clock.now();
    const total = { messages: 0, envelopes: 0, sends: 0, tokens: 0, keys: 0, attachments: 0 };
    for (;;) {
      const outcome = await this.envelopes.expireDueMessages(now, this.config.SWEEP_BATCH);
      await this.expiry.report(outcome, now, 'sweep');
      total.messages += outcome.messages.length;
      total.envelopes += outcome.copies.length;
      if (outcome.messages.length < this.config.SWEEP_BATCH) break;
    }
    for (;;) {
      const n = await this.envelopes.deleteOverdue(now, this.config.SWEEP_BATCH);
      total.envelopes += n.envelopes;
      total.sends += n.sends;
      if (n.envelopes < this.config.SWEEP_BATCH && n.sends < this.config.SWEEP_BATCH) break;
    }
    for (;;) {
      const n = await this.tokens.deleteExpired(now, this.config.SWEEP_BATCH);
      total.tokens += n;
      if (n < this.config.SWEEP_BATCH) break;
    }
    // media-upload reaps these too; whichever instance locks a row first deletes it.
    total.attachments = await this.attachments.reapAll(now, this.config.SWEEP_BATCH);
    total.keys = await this.keys.destroyEnded(now, this.config.EXPIRY_KEY_WINDOW_S * 1000);
    this.metrics.expiryKeysDestroyed.inc(total.keys);
    this.metrics.sweptRows.inc({ table: 'envelopes' }, total.envelopes);
    this.metrics.sweptRows.inc({ table: 'message_sends' }, total.sends);
    this.metrics.sweptRows.inc({ table: 'auth_tokens' }, total.tokens);
    if (Object.values(total).some((n) => n > 0)) this.logger.info(total, 'sweep deleted overdue rows');
    return total;
  }

  async onModuleDestroy(): Promise<void> {
    await this.task.stop();
  }
}

import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { APP_CONFIG, AttachmentReaper, DatabaseClock, EnvelopeExpiryRepository, ExpiryKeysRepository, LOGGER, Metrics, PeriodicTask, TokensRepository, type AppConfig, type Logger } from '@umbra/server';
import { ExpiryService } from '../expiry/expiry.service';

type SweepStep = 'keys' | 'messages' | 'envelopes' | 'tokens' | 'attachments';

export interface SweepResult {
  messages: number;
  envelopes: number;
  sends: number;
  tokens: number;
  keys: number;
  attachments: number;
  /** Steps that failed this pass (logged; the next pass retries them). */
  failed: SweepStep[];
}

/**
 * Deletes, in bounded batches, every vanishing message past its expiry (with the same reports as the
 * expiry jobs), every other envelope past its deadline (read-mode deadline or maximum retention),
 * expired send records and tokens; before all that it destroys the keys of ended expiry windows. It runs on a
 * timer in every instance and keeps no state in Redis, so a flushed Redis delays nothing by more
 * than SWEEP_INTERVAL_MS; batches of concurrent instances never overlap (SKIP LOCKED).
 */
@Injectable()
export class SweepService implements OnModuleInit, OnModuleDestroy {
  private readonly task: PeriodicTask<unknown>;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(EnvelopeExpiryRepository) private readonly envelopes: EnvelopeExpiryRepository,
    @Inject(TokensRepository) private readonly tokens: TokensRepository,
    @Inject(ExpiryKeysRepository) private readonly keys: ExpiryKeysRepository,
    @Inject(ExpiryService) private readonly expiry: ExpiryService,
    @Inject(AttachmentReaper) private readonly attachments: AttachmentReaper,
    @Inject(DatabaseClock) private readonly clock: DatabaseClock,
    @Inject(Metrics) private readonly metrics: Metrics,
  ) {
    this.task = new PeriodicTask(() => this.sweep(), config.SWEEP_INTERVAL_MS, (err) => logger.error({ err: String(err) }, 'sweep failed'));
  }

  onModuleInit(): void {
    this.task.start();
  }

  /**
   * One full pass; returns what it deleted and which steps failed. Ended windows' keys are destroyed
   * first and every step runs on its own: a failing step (the object store down, say) is logged and
   * retried by the next pass, and never keeps a key alive or stops the other deletions.
   */
  async sweep(): Promise<SweepResult> {
    const now = await this.clock.now();
    this.metrics.clockOffset.set(this.clock.offset / 1000);
    const total: SweepResult = { messages: 0, envelopes: 0, sends: 0, tokens: 0, keys: 0, attachments: 0, failed: [] };
    const step = async (name: SweepStep, run: () => Promise<void>) => {
      try {
        await run();
      } catch (err) {
        total.failed.push(name);
        this.logger.error({ step: name, err: String(err) }, 'sweep step failed; the next pass retries it');
      }
    };
    await step('keys', async () => {
      total.keys = await this.keys.destroyEnded(now, this.config.EXPIRY_KEY_WINDOW_S * 1000);
      this.metrics.expiryKeysDestroyed.inc(total.keys);
    });
    await step('messages', async () => {
      for (;;) {
        const outcome = await this.envelopes.expireDueMessages(now, this.config.SWEEP_BATCH);
        total.messages += outcome.messages.length;
        total.envelopes += outcome.copies.length;
        await this.expiry.report(outcome, now, 'sweep');
        if (outcome.messages.length < this.config.SWEEP_BATCH) break;
      }
    });
    await step('envelopes', async () => {
      for (;;) {
        const n = await this.envelopes.deleteOverdue(now, this.config.SWEEP_BATCH);
        total.envelopes += n.envelopes;
        total.sends += n.sends;
        if (n.envelopes < this.config.SWEEP_BATCH && n.sends < this.config.SWEEP_BATCH) break;
      }
    });
    await step('tokens', async () => {
      for (;;) {
        const n = await this.tokens.deleteExpired(now, this.config.SWEEP_BATCH);
        total.tokens += n;
        if (n < this.config.SWEEP_BATCH) break;
      }
    });
    // media-upload reaps these too; whichever instance locks a row first deletes it.
    await step('attachments', async () => {
      total.attachments = await this.attachments.reapAll(now, this.config.SWEEP_BATCH);
    });
    this.metrics.sweptRows.inc({ table: 'envelopes' }, total.envelopes);
    this.metrics.sweptRows.inc({ table: 'message_sends' }, total.sends);
    this.metrics.sweptRows.inc({ table: 'auth_tokens' }, total.tokens);
    const { failed, ...counts } = total;
    if (Object.values(counts).some((n) => n > 0)) this.logger.info(counts, 'sweep deleted overdue rows');
    if (failed.length > 0) this.logger.warn({ failed }, 'sweep pass incomplete');
    return total;
  }

  async onModuleDestroy(): Promise<void> {
    await this.task.stop();
  }
}

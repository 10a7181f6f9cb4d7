import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { APP_CONFIG, Clock, EnvelopesRepository, LOGGER, Metrics, TokensRepository, type AppConfig, type Logger } from '@umbra/server';

/**
 * Deletes, in bounded batches, every envelope past its deadline (expiry or maximum retention),
 * expired send records and expired tokens. It runs on a timer in every instance and keeps no
 * state in Redis, so a flushed Redis delays nothing; batches of concurrent instances never overlap.
 */
@Injectable()
export class SweepService implements OnModuleInit, OnModuleDestroy {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(EnvelopesRepository) private readonly envelopes: EnvelopesRepository,
    @Inject(TokensRepository) private readonly tokens: TokensRepository,
    @Inject(Clock) private readonly clock: Clock,
    @Inject(Metrics) private readonly metrics: Metrics,
  ) {}

  onModuleInit(): void {
    this.timer = setInterval(() => void this.tick(), this.config.SWEEP_INTERVAL_MS);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    if (this.running) return;
    this.running = this.sweep()
      .then(() => undefined)
      .catch((err: unknown) => this.logger.error({ err: String(err) }, 'sweep failed'))
      .finally(() => (this.running = undefined));
    await this.running;
  }

  /** One full pass; returns what it deleted. */
  async sweep(): Promise<{ envelopes: number; sends: number; tokens: number }> {
    const now = this.clock.now();
    const total = { envelopes: 0, sends: 0, tokens: 0 };
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
    this.metrics.sweptRows.inc({ table: 'envelopes' }, total.envelopes);
    this.metrics.sweptRows.inc({ table: 'message_sends' }, total.sends);
    this.metrics.sweptRows.inc({ table: 'auth_tokens' }, total.tokens);
    if (total.envelopes + total.sends + total.tokens > 0) this.logger.info(total, 'sweep deleted overdue rows');
    return total;
  }

  async onModuleDestroy(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }
}

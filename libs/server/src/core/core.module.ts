import { type DynamicModule, Global, Inject, Injectable, Module, type OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { APP_CONFIG, type AppConfig } from '../config/config';
import { LOGGER, type Logger } from '../logging/logger';
import { Clock, SystemClock } from './clock';
import { Metrics } from '../metrics/metrics';
import { createDataSource } from '../database/data-source';
import { AccountsRepository } from '../database/accounts.repository';
import { TokensRepository } from '../database/tokens.repository';
import { EnvelopesRepository } from '../database/envelopes.repository';
import { ExpiryKeysRepository } from '../database/expiry-keys.repository';
import { EnvelopeSealer } from '../database/envelope-sealer';
import { PrekeysRepository } from '../database/prekeys.repository';
import { createRedis, type Redis } from '../redis/redis';
import { Bus } from '../redis/bus';
import { PresenceStore } from '../redis/presence.store';
import { RateLimiter } from '../rate-limit/rate-limiter';
import { ChallengeStore } from '../auth/challenge.store';
import { TokenService } from '../auth/token.service';
import { AuthResponseVerifier } from '../auth/auth-response.verifier';
import { AuthGuard } from '../auth/auth.guard';
import { HealthService } from '../health/health.service';
import { HealthController } from '../health/health.controller';
import { QueueRegistry } from '../queues/queue.registry';
import { ExpiryScheduler } from '../queues/expiry.scheduler';

export const REDIS = Symbol('REDIS');
export const REDIS_SUBSCRIBER = Symbol('REDIS_SUBSCRIBER');

export interface CoreOverrides {
  clock?: Clock;
}

@Injectable()
class CoreLifecycle implements OnApplicationShutdown {
  constructor(
    @Inject(DataSource) private readonly ds: DataSource,
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(REDIS_SUBSCRIBER) private readonly sub: Redis,
    @Inject(Bus) private readonly bus: Bus,
    @Inject(QueueRegistry) private readonly queues: QueueRegistry,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    await this.queues.close();
    await this.bus.unsubscribeAll();
    this.sub.disconnect();
    await this.redis.quit().catch(() => this.redis.disconnect());
    if (this.ds.isInitialized) await this.ds.destroy();
  }
}

/** What every service shares: typed config, logger, clock, metrics, Postgres, Redis, auth, health. */
@Global()
@Module({})
export class CoreModule {
  static forRoot(config: AppConfig, logger: Logger, metrics: Metrics, overrides: CoreOverrides = {}): DynamicModule {
    const prefix = config.REDIS_PREFIX;
    return {
      module: CoreModule,
      controllers: [HealthController],
      providers: [
        { provide: APP_CONFIG, useValue: config },
        { provide: LOGGER, useValue: logger },
        { provide: Metrics, useValue: metrics },
        { provide: Clock, useValue: overrides.clock ?? new SystemClock() },
        {
          provide: DataSource,
          useFactory: async () => {
            const ds = createDataSource(config.DATABASE_URL.reveal(), config.DATABASE_POOL_SIZE);
            await ds.initialize();
            return ds;
          },
        },
        { provide: REDIS, useFactory: () => createRedis(config.REDIS_URL.reveal(), 'commands', `${config.instanceId}:cmd`) },
        { provide: REDIS_SUBSCRIBER, useFactory: () => createRedis(config.REDIS_URL.reveal(), 'blocking', `${config.instanceId}:sub`) },
        {
          provide: Bus,
          inject: [REDIS, REDIS_SUBSCRIBER],
          useFactory: (pub: Redis, sub: Redis) => new Bus(pub, sub, (err, channel) => logger.error({ err: String(err), channel }, 'pub/sub handler failed')),
        },
        { provide: AccountsRepository, inject: [DataSource], useFactory: (ds: DataSource) => new AccountsRepository(ds) },
        { provide: TokensRepository, inject: [DataSource], useFactory: (ds: DataSource) => new TokensRepository(ds) },
        { provide: ExpiryKeysRepository, inject: [DataSource], useFactory: (ds: DataSource) => new ExpiryKeysRepository(ds) },
        { provide: EnvelopeSealer, inject: [ExpiryKeysRepository], useFactory: (k: ExpiryKeysRepository) => new EnvelopeSealer(k, config.EXPIRY_KEY_WINDOW_S * 1000) },
        { provide: EnvelopesRepository, inject: [DataSource, EnvelopeSealer], useFactory: (ds: DataSource, s: EnvelopeSealer) => new EnvelopesRepository(ds, s) },
        { provide: PrekeysRepository, inject: [DataSource], useFactory: (ds: DataSource) => new PrekeysRepository(ds) },
        { provide: PresenceStore, inject: [REDIS], useFactory: (r: Redis) => new PresenceStore(r, prefix) },
        { provide: RateLimiter, inject: [REDIS], useFactory: (r: Redis) => new RateLimiter(r, prefix, (bucket) => metrics.rateLimited.inc({ bucket })) },
        { provide: ChallengeStore, inject: [REDIS], useFactory: (r: Redis) => new ChallengeStore(r, prefix) },
        { provide: TokenService, inject: [TokensRepository, Clock], useFactory: (t: TokensRepository, c: Clock) => new TokenService(t, c, config.TOKEN_TTL_S) },
        {
          provide: AuthResponseVerifier,
          inject: [ChallengeStore, Clock],
          useFactory: (s: ChallengeStore, c: Clock) => new AuthResponseVerifier(s, c, config.PUBLIC_ORIGIN),
        },
        { provide: HealthService, inject: [DataSource, REDIS], useFactory: (ds: DataSource, r: Redis) => new HealthService(ds, r) },
        { provide: QueueRegistry, useFactory: () => new QueueRegistry(config.REDIS_URL.reveal(), prefix) },
        { provide: ExpiryScheduler, inject: [QueueRegistry], useFactory: (q: QueueRegistry) => new ExpiryScheduler(q) },
        AuthGuard,
        CoreLifecycle,
      ],
      exports: [
        APP_CONFIG, LOGGER, Metrics, Clock, DataSource, REDIS, Bus, AccountsRepository, TokensRepository, EnvelopesRepository, PrekeysRepository, ExpiryKeysRepository, EnvelopeSealer,
        PresenceStore, RateLimiter, ChallengeStore, TokenService, AuthResponseVerifier, HealthService, AuthGuard, QueueRegistry, ExpiryScheduler,
      ],
    };
  }
}

import { type DynamicModule, Global, Inject, Injectable, Module, type OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { APP_CONFIG, redisTarget, type AppConfig } from '../config/config';
import { LOGGER, type Logger } from '../logging/logger';
import { Clock, SystemClock } from './clock';
import { Metrics } from '../metrics/metrics';
import { createDataSource } from '../database/data-source';
import { AccountsRepository } from '../database/accounts.repository';
import { TokensRepository } from '../database/tokens.repository';
import { EnvelopeStoreRepository } from '../database/envelope-store.repository';
import { DeviceQueueRepository } from '../database/device-queue.repository';
import { HotStatements } from '../database/hot-statements';
import { EnvelopeExpiryRepository } from '../database/envelope-expiry.repository';
import { ExpiryKeysRepository } from '../database/expiry-keys.repository';
import { DatabaseClock } from '../database/database-clock';
import { EnvelopeSealer } from '../database/envelope-sealer';
import { PrekeysRepository } from '../database/prekeys.repository';
import { createRedis, createRedisClient, isCluster, nodeUrl, type RedisClient } from '../redis/redis';
import { Bus, NodeBus } from '../redis/bus';
import { ShardedBus } from '../redis/sharded-bus';
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
/** The Bus's subscriber connection on a single Redis; null on a cluster (the ShardedBus connects per channel). */
export const REDIS_SUBSCRIBER = Symbol('REDIS_SUBSCRIBER');
/** Rate-limit counters: REDIS itself, or the instance of RATE_LIMIT_REDIS_URL (evictable, so it can never starve BullMQ). */
export const RATE_LIMIT_REDIS = Symbol('RATE_LIMIT_REDIS');

export interface CoreOverrides {
  clock?: Clock;
}

@Injectable()
class CoreLifecycle implements OnApplicationShutdown {
  constructor(
    @Inject(DataSource) private readonly ds: DataSource,
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(REDIS_SUBSCRIBER) private readonly sub: RedisClient | null,
    @Inject(RATE_LIMIT_REDIS) private readonly limits: RedisClient,
    @Inject(Bus) private readonly bus: Bus,
    @Inject(QueueRegistry) private readonly queues: QueueRegistry,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    await this.queues.close();
    await this.bus.unsubscribeAll();
    this.sub?.disconnect();
    if (this.limits !== this.redis) await this.limits.quit().catch(() => this.limits.disconnect());
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
    const redis = redisTarget(config);
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
        { provide: REDIS, useFactory: () => createRedisClient(redis, 'commands', `${config.instanceId}:cmd`, { commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS }) },
        {
          provide: RATE_LIMIT_REDIS,
          inject: [REDIS],
          useFactory: (r: RedisClient) =>
            config.RATE_LIMIT_REDIS_URL ? createRedis(config.RATE_LIMIT_REDIS_URL.reveal(), 'commands', `${config.instanceId}:limits`, { commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS }) : r,
        },
        { provide: REDIS_SUBSCRIBER, useFactory: () => (redis.clusterNodes ? null : createRedis(redis.url, 'subscriber', `${config.instanceId}:sub`)) },
        {
          provide: Bus,
          inject: [REDIS, REDIS_SUBSCRIBER],
          useFactory: (pub: RedisClient, sub: RedisClient | null) => {
            const onError = (err: unknown, channel: string) => logger.error({ err: String(err), channel }, 'pub/sub handler failed');
            const opts = {
              onRepaired: (missing: number) => {
                metrics.pubsubResubscribes.inc();
                logger.warn({ missing }, 'pub/sub subscriptions missing in Redis; subscribing again');
              },
            };
            if (isCluster(pub)) return new ShardedBus(pub, (node) => createRedis(nodeUrl(redis.url, node), 'subscriber', `${config.instanceId}:sub`), onError, opts);
            if (!sub || isCluster(sub)) throw new Error('a single Redis needs its subscriber connection');
            return new NodeBus(pub, sub, onError, opts);
          },
        },
        { provide: AccountsRepository, inject: [DataSource], useFactory: (ds: DataSource) => new AccountsRepository(ds) },
        { provide: TokensRepository, inject: [DataSource], useFactory: (ds: DataSource) => new TokensRepository(ds) },
        { provide: ExpiryKeysRepository, inject: [DataSource], useFactory: (ds: DataSource) => new ExpiryKeysRepository(ds) },
        { provide: DatabaseClock, inject: [DataSource, Clock], useFactory: (ds: DataSource, c: Clock) => new DatabaseClock(ds, c) },
        { provide: EnvelopeSealer, inject: [ExpiryKeysRepository], useFactory: (k: ExpiryKeysRepository) => new EnvelopeSealer(k, config.EXPIRY_KEY_WINDOW_S * 1000) },
        { provide: HotStatements, inject: [DataSource], useFactory: (ds: DataSource) => new HotStatements(ds, config.DATABASE_PREPARED_STATEMENTS) },
        {
          provide: EnvelopeStoreRepository,
          inject: [DataSource, EnvelopeSealer, HotStatements],
          useFactory: (ds: DataSource, s: EnvelopeSealer, hot: HotStatements) => new EnvelopeStoreRepository(ds, s, hot),
        },
        {
          provide: DeviceQueueRepository,
          inject: [DataSource, EnvelopeSealer, HotStatements],
          useFactory: (ds: DataSource, s: EnvelopeSealer, hot: HotStatements) => new DeviceQueueRepository(ds, s, hot),
        },
        { provide: EnvelopeExpiryRepository, inject: [DataSource], useFactory: (ds: DataSource) => new EnvelopeExpiryRepository(ds) },
        { provide: PrekeysRepository, inject: [DataSource], useFactory: (ds: DataSource) => new PrekeysRepository(ds) },
        { provide: PresenceStore, inject: [REDIS], useFactory: (r: RedisClient) => new PresenceStore(r, prefix) },
        {
          provide: RateLimiter,
          inject: [RATE_LIMIT_REDIS],
          useFactory: (r: RedisClient) => new RateLimiter(r, prefix, (bucket) => metrics.rateLimited.inc({ bucket }), config.RATE_LIMIT_MAX_CLIENT_BUCKETS_PER_WINDOW),
        },
        { provide: ChallengeStore, inject: [REDIS], useFactory: (r: RedisClient) => new ChallengeStore(r, prefix) },
        { provide: TokenService, inject: [TokensRepository, Clock], useFactory: (t: TokensRepository, c: Clock) => new TokenService(t, c, config.TOKEN_TTL_S) },
        {
          provide: AuthResponseVerifier,
          inject: [ChallengeStore, Clock],
          useFactory: (s: ChallengeStore, c: Clock) => new AuthResponseVerifier(s, c, config.PUBLIC_ORIGIN),
        },
        {
          provide: HealthService,
          inject: [DataSource, REDIS, Bus],
          useFactory: (ds: DataSource, r: RedisClient, bus: Bus) => {
            const health = new HealthService(ds, r);
            // A process whose pub/sub subscriptions are missing would take sends it can never answer.
            health.addCheck('pubsub', async () => {
              if (!bus.isComplete()) throw new Error('subscriptions missing');
            });
            return health;
          },
        },
        { provide: QueueRegistry, useFactory: () => new QueueRegistry(redis, prefix) },
        { provide: ExpiryScheduler, inject: [QueueRegistry], useFactory: (q: QueueRegistry) => new ExpiryScheduler(q) },
        AuthGuard,
        CoreLifecycle,
      ],
      exports: [
        APP_CONFIG, LOGGER, Metrics, Clock, DatabaseClock, DataSource, REDIS, RATE_LIMIT_REDIS, Bus, AccountsRepository, TokensRepository, EnvelopeStoreRepository, DeviceQueueRepository, EnvelopeExpiryRepository, PrekeysRepository, ExpiryKeysRepository, EnvelopeSealer,
        PresenceStore, RateLimiter, ChallengeStore, TokenService, AuthResponseVerifier, HealthService, AuthGuard, QueueRegistry, ExpiryScheduler,
      ],
    };
  }
}

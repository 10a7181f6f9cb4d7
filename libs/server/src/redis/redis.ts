import IORedis, { type Redis, type RedisOptions } from 'ioredis';

/**
 * `commands`: fails fast when Redis is down, so requests answer 503 and readiness turns false.
 * `blocking`: what BullMQ workers and subscribers need (retries forever, reconnects).
 */
export function createRedis(url: string, kind: 'commands' | 'blocking', name: string): Redis {
  const options: RedisOptions =
    kind === 'commands'
      ? { maxRetriesPerRequest: 1, enableOfflineQueue: true, connectionName: name, lazyConnect: false }
      : { maxRetriesPerRequest: null, enableReadyCheck: true, connectionName: name };
  const redis = new IORedis(url, options);
  // Connection errors surface through readiness and failed commands; without a listener ioredis prints them.
  redis.on('error', () => undefined);
  return redis;
}

export type { Redis };

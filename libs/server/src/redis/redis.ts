import IORedis, { Cluster, type ClusterOptions, type Redis, type RedisOptions } from 'ioredis';

/** A command on a `commands` or `producer` connection fails after this long by default (config REDIS_COMMAND_TIMEOUT_MS). */
export const DEFAULT_REDIS_COMMAND_TIMEOUT_MS = 2000;

/** How often a cluster client re-reads which node serves which slot (a failover is also learnt from MOVED replies). */
export const CLUSTER_SLOTS_REFRESH_MS = 2000;

export type RedisKind = 'commands' | 'producer' | 'blocking' | 'subscriber';

/** A single Redis or a Redis Cluster: what the request path, presence, rate limits and BullMQ run on. */
export type RedisClient = Redis | Cluster;

/** Where Redis is: REDIS_URL, or the seed nodes of REDIS_CLUSTER_NODES (REDIS_URL then lends only its credentials and scheme). */
export interface RedisTarget {
  url: string;
  clusterNodes?: readonly RedisNode[];
}

export interface RedisNode {
  host: string;
  port: number;
}

export function isCluster(redis: RedisClient): redis is Cluster {
  return (redis as Cluster).isCluster === true;
}

/**
 * `commands`: request-path commands (rate limits, challenges, presence, publishes). `producer`: BullMQ
 * queues that only add jobs. Both fail fast when Redis is down, full or stalled, so requests answer
 * 503 and readiness turns false: one retry, a command timeout, and an offline queue only until the
 * first connection is up (commands issued during an outage fail at once instead of piling up in
 * memory for as long as it lasts).
 * `blocking`: what BullMQ workers need (retries forever, reconnects). `subscriber`: the same, for
 * the Bus, which re-subscribes itself (ioredis's auto-resubscribe raced its ready check).
 */
export function createRedis(url: string, kind: RedisKind, name: string, opts: { commandTimeoutMs?: number } = {}): Redis {
  const failFast = kind === 'commands' || kind === 'producer';
  // Auto-pipelining: commands issued in the same tick (sends from many sockets) share one write.
  const redis = new IORedis(url, { ...nodeOptions(kind, name, opts), enableAutoPipelining: failFast });
  if (failFast) redis.once('ready', () => (redis.options.enableOfflineQueue = false));
  // Connection errors surface through readiness and failed commands; without a listener ioredis prints them.
  redis.on('error', () => undefined);
  return redis;
}

/**
 * createRedis for a target that may be a cluster. A cluster client keeps the kind's failure
 * behaviour on every node connection; subscriptions on a cluster are not a cluster client's job
 * (the ShardedBus holds one connection per channel to the node serving its slot).
 */
export function createRedisClient(target: RedisTarget, kind: Exclude<RedisKind, 'subscriber'>, name: string, opts: { commandTimeoutMs?: number } = {}): RedisClient {
  if (!target.clusterNodes?.length) return createRedis(target.url, kind, name, opts);
  const failFast = kind === 'commands' || kind === 'producer';
  const auth = credentials(target.url);
  const options: ClusterOptions = {
    redisOptions: { ...nodeOptions(kind, name, opts), ...auth },
    // With TLS the nodes are reached by the names the cluster announces, so certificates match them (managed clusters).
    ...(auth.tls ? { dnsLookup: (address: string, done: (err: Error | null, address: string) => void) => done(null, address) } : {}),
    enableOfflineQueue: true,
    slotsRefreshInterval: CLUSTER_SLOTS_REFRESH_MS,
    // Commands issued together (a presence refresh of a thousand sockets) go out as one pipeline per node.
    enableAutoPipelining: failFast,
  };
  const cluster = new Cluster([...target.clusterNodes], options);
  if (failFast) cluster.once('ready', () => (cluster.options.enableOfflineQueue = false));
  cluster.on('error', () => undefined);
  return cluster;
}

/** The URL of one cluster node, with REDIS_URL's credentials and scheme (a cluster has only database 0). */
export function nodeUrl(url: string, node: RedisNode): string {
  const u = new URL(url);
  u.hostname = node.host.includes(':') ? `[${node.host}]` : node.host;
  u.port = String(node.port);
  u.pathname = '';
  return u.toString();
}

/** REDIS_CLUSTER_NODES ("host:port,host:port", IPv6 as [addr]:port) as nodes; throws on a malformed entry. */
export function parseClusterNodes(raw: string): RedisNode[] {
  return raw
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)
    .map((entry) => {
      const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(entry);
      const port = Number(m?.[3]);
      if (!m || port < 1 || port > 65535) throw new Error(`"${entry}" is not host:port`);
      return { host: m[1] ?? m[2]!, port };
    });
}

function nodeOptions(kind: RedisKind, name: string, opts: { commandTimeoutMs?: number }): RedisOptions {
  return kind === 'commands' || kind === 'producer'
    ? { maxRetriesPerRequest: 1, enableOfflineQueue: true, commandTimeout: opts.commandTimeoutMs ?? DEFAULT_REDIS_COMMAND_TIMEOUT_MS, connectionName: name, lazyConnect: false }
    : { maxRetriesPerRequest: null, enableReadyCheck: true, connectionName: name, autoResubscribe: kind !== 'subscriber' };
}

function credentials(url: string): RedisOptions {
  const u = new URL(url);
  return {
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}

export type { Redis, Cluster };

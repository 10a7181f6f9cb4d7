import { isCluster, type RedisClient } from './redis';

/** One held socket: the device and the id of the connection that claimed its presence. */
export interface PresenceClaim {
  deviceKey: string;
  connectionId: string;
}

// Values are "<gatewayId> <connectionId>"; readers only need the gateway part.
const SEPARATOR = ' ';

/** Extends the entry if this connection owns it, re-claims it if it expired; 0 if another connection owns it. */
const REFRESH = `local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then redis.call('EXPIRE', KEYS[1], ARGV[2]) return 1 end
if not v then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) return 1 end
return 0`;

const CLEAR = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

type ScriptedRedis = RedisClient & {
  umbraPresenceRefresh(key: string, value: string, ttlS: number): Promise<number>;
  umbraPresenceClear(key: string, value: string): Promise<number>;
};

/**
 * Which gateway instance holds each connected device's socket. The newest connection owns the
 * entry: a connect claims it outright, refreshes and clears are compare-and-set on the connection
 * id, so an older (possibly half-open) socket can never take it back. Entries expire unless
 * refreshed, so a crashed gateway leaves nothing behind for long.
 */
export class PresenceStore {
  private readonly redis: ScriptedRedis;

  constructor(
    redis: RedisClient,
    private readonly prefix: string,
    readonly ttlS = 90,
  ) {
    this.redis = redis as ScriptedRedis;
    // defineCommand sends EVALSHA and falls back to EVAL, in pipelines too.
    if (typeof this.redis.umbraPresenceRefresh !== 'function') {
      redis.defineCommand('umbraPresenceRefresh', { numberOfKeys: 1, lua: REFRESH });
      redis.defineCommand('umbraPresenceClear', { numberOfKeys: 1, lua: CLEAR });
    }
  }

  private key(deviceKey: string): string {
    return `${this.prefix}:presence:${deviceKey}`;
  }

  private aliveKey(gatewayId: string): string {
    return `${this.prefix}:gateway:${gatewayId}:alive`;
  }

  private static value(gatewayId: string, connectionId: string): string {
    return gatewayId + SEPARATOR + connectionId;
  }

  /** A new connection takes the device over, whoever held it before. */
  async claim(claim: PresenceClaim, gatewayId: string): Promise<void> {
    await this.redis.set(this.key(claim.deviceKey), PresenceStore.value(gatewayId, claim.connectionId), 'EX', this.ttlS);
  }

  /**
   * Extends the entries these connections still own and re-claims those that are gone (expired, or
   * lost with Redis's data), pipelined. Returns the claims another connection has taken over.
   */
  async refresh(claims: PresenceClaim[], gatewayId: string): Promise<PresenceClaim[]> {
    if (isCluster(this.redis)) return this.refreshEach(claims, gatewayId);
    const lost: PresenceClaim[] = [];
    for (let i = 0; i < claims.length; i += 1000) {
      const chunk = claims.slice(i, i + 1000);
      const p = this.redis.pipeline() as unknown as { umbraPresenceRefresh(key: string, value: string, ttlS: number): void; exec(): Promise<[Error | null, unknown][] | null> };
      for (const c of chunk) p.umbraPresenceRefresh(this.key(c.deviceKey), PresenceStore.value(gatewayId, c.connectionId), this.ttlS);
      const results = await p.exec();
      results?.forEach(([err, owned], j) => {
        if (err) throw err;
        if (owned === 0) lost.push(chunk[j]!);
      });
    }
    return lost;
  }

  /** refresh on a cluster: one command per key (the client pipelines them per node; a pipeline of keys in many slots fails). */
  private async refreshEach(claims: PresenceClaim[], gatewayId: string): Promise<PresenceClaim[]> {
    const lost: PresenceClaim[] = [];
    for (let i = 0; i < claims.length; i += 1000) {
      const chunk = claims.slice(i, i + 1000);
      const owned = await Promise.all(chunk.map((c) => this.redis.umbraPresenceRefresh(this.key(c.deviceKey), PresenceStore.value(gatewayId, c.connectionId), this.ttlS)));
      owned.forEach((o, j) => {
        if (o === 0) lost.push(chunk[j]!);
      });
    }
    return lost;
  }

  /**
   * Renews this gateway's sentinel key (one SET … GET) and says whether it was still there. Missing
   * means Redis lost this gateway's presence entries (FLUSHALL, a restart with nothing on disk,
   * eviction) — or that this is the first call, or the gateway stalled for longer than `ttlS`.
   */
  async heartbeat(gatewayId: string): Promise<boolean> {
    const previous = await this.redis.set(this.aliveKey(gatewayId), '1', 'EX', this.ttlS, 'GET');
    return previous !== null;
  }

  /** Calls `listener` whenever the command connection becomes ready, reconnects included: Redis may have restarted empty. */
  onReady(listener: () => void): () => void {
    this.redis.on('ready', listener);
    return () => void this.redis.off('ready', listener);
  }

  async dropHeartbeat(gatewayId: string): Promise<void> {
    await this.redis.del(this.aliveKey(gatewayId));
  }

  /** Removes the entry only if this connection still owns it (the device may have reconnected elsewhere). */
  async clear(claim: PresenceClaim, gatewayId: string): Promise<void> {
    await this.redis.umbraPresenceClear(this.key(claim.deviceKey), PresenceStore.value(gatewayId, claim.connectionId));
  }

  /** The gateway holding each device's socket, or null. */
  async lookup(deviceKeys: string[]): Promise<(string | null)[]> {
    if (deviceKeys.length === 0) return [];
    const keys = deviceKeys.map((k) => this.key(k));
    // MGET needs its keys in one slot on a cluster; there, one GET per key, pipelined per node.
    const values = isCluster(this.redis) ? await Promise.all(keys.map((k) => this.redis.get(k))) : await this.redis.mget(...keys);
    return values.map((v) => (v === null ? null : v.split(SEPARATOR, 1)[0]!));
  }

  /** Groups items by the gateway holding their device's socket (one MGET); items of offline devices are left out. */
  async route<T>(items: T[], device: (item: T) => string): Promise<Map<string, T[]>> {
    const keys = items.map(device);
    const unique = [...new Set(keys)];
    const owners = await this.lookup(unique);
    const ownerOf = new Map(unique.map((k, i) => [k, owners[i]]));
    const out = new Map<string, T[]>();
    items.forEach((item, i) => {
      const gw = ownerOf.get(keys[i]!);
      if (!gw) return;
      const list = out.get(gw);
      if (list) list.push(item);
      else out.set(gw, [item]);
    });
    return out;
  }
}

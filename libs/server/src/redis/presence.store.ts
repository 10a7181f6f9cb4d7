import type { Redis } from './redis';

/**
 * Which gateway instance holds each connected device's socket. Entries expire unless the gateway
 * refreshes them, so a crashed gateway leaves nothing behind for long.
 */
export class PresenceStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    readonly ttlS = 90,
  ) {}

  private key(deviceKey: string): string {
    return `${this.prefix}:presence:${deviceKey}`;
  }

  async set(deviceKey: string, gatewayId: string): Promise<void> {
    await this.redis.set(this.key(deviceKey), gatewayId, 'EX', this.ttlS);
  }

  async refresh(deviceKeys: string[], gatewayId: string): Promise<void> {
    for (let i = 0; i < deviceKeys.length; i += 1000) {
      const p = this.redis.pipeline();
      for (const k of deviceKeys.slice(i, i + 1000)) p.set(this.key(k), gatewayId, 'EX', this.ttlS);
      await p.exec();
    }
  }

  /** Removes the entry only if this gateway still owns it (the device may have moved). */
  async clear(deviceKey: string, gatewayId: string): Promise<void> {
    await this.redis.eval(
      `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`,
      1,
      this.key(deviceKey),
      gatewayId,
    );
  }

  async lookup(deviceKeys: string[]): Promise<(string | null)[]> {
    if (deviceKeys.length === 0) return [];
    return this.redis.mget(...deviceKeys.map((k) => this.key(k)));
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

import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { APP_CONFIG, AccountsRepository, Bus, Channels, type AppConfig, type DevicesChangedMessage } from '@umbra/server';

interface Entry {
  listVersion: number;
  deviceIds: number[];
  loadedAt: number;
}

const TTL_MS = 60_000;
const MAX_ENTRIES = 100_000;

/**
 * Current device ids per account, for the send-time check. A hit that disagrees with a send is
 * re-read from Postgres before the gateway answers 409, so a stale entry never rejects a good send;
 * devices-changed events evict entries at once.
 */
@Injectable()
export class DeviceSetsCache implements OnModuleInit {
  private readonly entries = new Map<string, Entry>();

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(AccountsRepository) private readonly accounts: AccountsRepository,
    @Inject(Bus) private readonly bus: Bus,
  ) {}

  async onModuleInit(): Promise<void> {
    await this.bus.subscribe<DevicesChangedMessage>(Channels.devicesChanged(this.config.REDIS_PREFIX), (msg) => this.entries.delete(msg.account));
  }

  /** Device sets of the given accounts (hex ids); `fresh` forces a Postgres read. Unknown accounts are absent. */
  async get(accountHexes: string[], fresh: boolean): Promise<Map<string, number[]>> {
    const now = Date.now();
    const out = new Map<string, number[]>();
    const missing: string[] = [];
    for (const a of accountHexes) {
      const e = this.entries.get(a);
      if (!fresh && e && now - e.loadedAt < TTL_MS) out.set(a, e.deviceIds);
      else missing.push(a);
    }
    if (missing.length > 0) {
      const loaded = await this.accounts.deviceSets(missing.map((h) => Buffer.from(h, 'hex')));
      for (const [hex, set] of loaded) {
        if (this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value as string);
        this.entries.set(hex, { ...set, loadedAt: now });
        out.set(hex, set.deviceIds);
      }
    }
    return out;
  }
}

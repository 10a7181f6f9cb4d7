import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { APP_CONFIG, AccountsRepository, Bus, Channels, type AppConfig, type DevicesChangedMessage } from '@umbra/server';

interface Entry {
  listVersion: number;
  deviceIds: number[];
  loadedAt: number;
}

const MAX_ENTRIES = 100_000;
/** Recipients' lists may be older: a send that disagrees with one re-reads it before any answer. */
const RECIPIENT_TTL_MS = 60_000;

/**
 * Current device ids per account, for the send-time check (the sender's own device and the
 * recipients). A hit that disagrees with a send is re-read from Postgres before the gateway answers,
 * so a stale entry never rejects a good send; devices-changed events evict entries at once. The
 * sender's own list is trusted for DEVICE_SET_CACHE_TTL_MS at most, so a removed device whose
 * devices-changed event was lost can send for that long at most.
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

  /**
   * Device sets of the given accounts (hex ids); `fresh` forces a Postgres read, and `sender`'s entry is
   * re-read once older than DEVICE_SET_CACHE_TTL_MS. Unknown accounts are absent.
   */
  async get(accountHexes: string[], fresh: boolean, sender?: string): Promise<Map<string, number[]>> {
    const now = Date.now();
    const out = new Map<string, number[]>();
    const missing: string[] = [];
    for (const a of accountHexes) {
      const e = this.entries.get(a);
      if (!fresh && e && now - e.loadedAt < (a === sender ? this.config.DEVICE_SET_CACHE_TTL_MS : RECIPIENT_TTL_MS)) out.set(a, e.deviceIds);
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

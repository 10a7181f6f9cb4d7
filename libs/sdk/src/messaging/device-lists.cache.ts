import { CryptoError, b64uDecode, b64uEncode, bytesEqual, checkDeviceListUpdate, decodeAccountId, hexEncode, parseSignedDeviceList, type SignedDeviceList } from '@umbra/crypto';
import type { UmbraClient } from '../client';
import type { KeyValueStore } from '../store';
import { LocalState } from '../state/local.state';
import { STATE_KEYS } from '../state/state.keys';

/** Accounts' device lists: fetched, verified against key transparency and the last list seen, cached. */
export class DeviceListsCache {
  private readonly state: LocalState;

  constructor(
    private readonly client: UmbraClient,
    store: KeyValueStore,
  ) {
    this.state = new LocalState(store);
  }

  /**
   * Fetches, verifies and caches an account's device list (rollback and equivocation checked). The
   * list must be in the key-transparency log (§12): a KtVerificationError stops the caller — a send
   * to that account encrypts nothing.
   */
  async fetch(accountIdText: string): Promise<SignedDeviceList> {
    const { deviceList: list } = await this.client.verifiedAccount(accountIdText);
    if (!bytesEqual(list.accountId, decodeAccountId(accountIdText))) throw new CryptoError('MALFORMED', 'device list of another account');
    const key = STATE_KEYS.deviceList(hexEncode(list.accountId));
    const cached = await this.state.get(key);
    if (cached) checkDeviceListUpdate(parseSignedDeviceList(b64uDecode(cached)), list);
    await this.state.set(key, b64uEncode(list.bytes));
    return list;
  }

  /** The cached verified list, refetched when it does not know `deviceId` (a newly linked device). */
  async cachedOrFetched(accountIdText: string, deviceId?: number): Promise<SignedDeviceList> {
    const raw = await this.state.get(STATE_KEYS.deviceList(hexEncode(decodeAccountId(accountIdText))));
    const cached = raw ? parseSignedDeviceList(b64uDecode(raw)) : undefined;
    if (cached && (deviceId === undefined || cached.devices.some((d) => d.deviceId === deviceId))) return cached;
    return this.fetch(accountIdText);
  }
}

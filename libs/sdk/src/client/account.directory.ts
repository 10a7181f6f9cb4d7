import { b64uDecode, b64uEncode, bytesEqual, canonicalHandle, createSignedHandleClaim, decodeAccountId, verifySignedDeviceList, type SignedDeviceList, type SignedHandleClaim } from '@umbra/crypto';
import { ROUTES, type AccountResponse } from '@umbra/protocol';
import type { Contacts } from '../contacts';
import type { KtAlert, KtClient } from '../kt/kt.client';
import { KtVerificationError } from '../kt/kt.errors';
import type { LocalState } from '../state/local.state';
import { STATE_KEYS } from '../state/state.keys';
import type { DeviceSession } from './device.session';

/** An account whose device list (and, looked up by handle, whose handle binding) the KT log confirmed. */
export interface VerifiedAccount {
  account: AccountResponse;
  deviceList: SignedDeviceList;
  handleClaim?: SignedHandleClaim;
}

/**
 * Accounts as the key-transparency log confirms them (§12): lookups by id and handle, this
 * account's handle and device list, and the monitoring of its own labels.
 */
export class AccountDirectory {
  private monitorTimer: ReturnType<typeof setInterval> | undefined;
  private monitoring: Promise<KtAlert[]> | undefined;

  constructor(
    private readonly session: DeviceSession,
    private readonly state: LocalState,
    private readonly kt: KtClient,
    private readonly contacts: Contacts,
    private readonly now: () => number,
  ) {}

  async verifiedAccount(accountIdText: string): Promise<VerifiedAccount> {
    const account = await this.session.api<AccountResponse>('GET', `/v1/accounts/${encodeURIComponent(accountIdText)}`);
    return { account, deviceList: await this.verifyServedList(account, decodeAccountId(accountIdText)) };
  }

  async verifiedAccountByHandle(handle: string): Promise<VerifiedAccount> {
    const account = await this.session.api<AccountResponse>('GET', `/v1/accounts/by-handle/${encodeURIComponent(handle)}`);
    const deviceList = await this.verifyServedList(account, decodeAccountId(account.accountId));
    const canonical = canonicalHandle(handle);
    const handleClaim = await this.kt.verifyHandle(canonical, deviceList.aik, account.handleClaim ? b64uDecode(account.handleClaim) : undefined);
    const own = this.session.hasIdentity ? this.session.identity.accountIdText : undefined;
    if (account.accountId !== own) await this.contacts.noteHandle(canonical, account.accountId);
    return { account, deviceList, handleClaim };
  }

  private async verifyServedList(account: AccountResponse, accountId: Uint8Array): Promise<SignedDeviceList> {
    const list = verifySignedDeviceList(b64uDecode(account.deviceList));
    if (!bytesEqual(list.accountId, accountId)) throw new KtVerificationError('wrong-account', 'the server served the device list of another account', { served: account.deviceList });
    return this.kt.verifyDeviceList(accountId, list);
  }

  monitorKt(): Promise<KtAlert[]> {
    this.monitoring ??= (async () => {
      const id = this.session.identity;
      if (!id.aikSk) return [];
      const handle = await this.state.get(STATE_KEYS.ownHandle);
      return this.kt.monitor({ accountId: id.accountId, aik: id.aik, listVersion: id.listVersion, deviceList: id.deviceList, handle: handle ?? null });
    })().finally(() => (this.monitoring = undefined));
    return this.monitoring;
  }

  /** §12: an AIK holder checks its own labels now and every `intervalMs` (network failures wait for the next round). */
  startMonitoring(intervalMs: number): void {
    void this.monitorKt().catch(() => undefined);
    this.monitorTimer = setInterval(() => void this.monitorKt().catch(() => undefined), intervalMs);
    this.monitorTimer.unref?.();
  }

  async stopMonitoring(): Promise<void> {
    if (this.monitorTimer) clearInterval(this.monitorTimer);
    await this.monitoring?.catch(() => undefined);
  }

  async claimHandle(handle: string, claimVersion: number): Promise<string> {
    const id = this.session.identity;
    if (!id.aikSk) throw new Error('only a device holding the account key can claim a handle');
    const claim = createSignedHandleClaim({ handle, accountId: id.accountId, claimVersion, issuedAt: this.now() }, id.aikSk);
    const res = await this.session.api<{ handle: string }>('PUT', ROUTES.claimHandle.path, { claim: b64uEncode(claim) });
    await this.state.set(STATE_KEYS.ownHandle, res.handle);
    return res.handle;
  }

  async releaseHandle(): Promise<void> {
    try {
      await this.session.api('DELETE', ROUTES.releaseHandle.path);
    } finally {
      await this.state.delete(STATE_KEYS.ownHandle);
    }
  }

  async publishDeviceList(deviceList: Uint8Array, listVersion: number): Promise<{ listVersion: number; removedDeviceIds: number[] }> {
    const res = await this.session.api<{ listVersion: number; removedDeviceIds: number[] }>('PUT', ROUTES.updateDevices.path, { deviceList: b64uEncode(deviceList) });
    await this.session.setIdentity({ ...this.session.identity, deviceList, listVersion });
    await this.kt.notePublished(deviceList, listVersion);
    return res;
  }
}

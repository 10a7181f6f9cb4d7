import { DEVICE_FLAG_AIK_HOLDER, bytesEqual, verifySafetyQr } from '@umbra/crypto';
import { linkNewDevice, removeDevice } from '../linking';
import type { UmbraCore } from './umbra.core';
import { UmbraError } from './umbra.errors';

export interface DeviceInfo {
  deviceId: number;
  /** When its certificate was made (ms). */
  createdAt: number;
  /** It holds the account key: it can link and remove devices and set the handle. */
  accountKeyHolder: boolean;
  /** It is the device this Umbra instance runs on. */
  thisDevice: boolean;
}

export interface SafetyNumber {
  /** 60 digits, the same on both sides. */
  digits: string;
  /** The digits in twelve groups of five, for display. */
  groups: string[];
  /** What the QR code shows; the peer scans it and checks it with `devices.verifySafetyQr`. */
  qr: string;
}

/** `umbra.devices`: an account's verified device list, linking, removal, and safety numbers. */
export class DevicesPart {
  constructor(private readonly core: UmbraCore) {}

  /** The device list of an account (default ours), verified against its account key and the key-transparency log. */
  async list(account?: string): Promise<{ listVersion: number; devices: DeviceInfo[] }> {
    this.core.assertOpen();
    const me = this.core.client.identity;
    const list = await this.core.messenger.deviceList(account ?? me.accountIdText);
    const mine = bytesEqual(list.accountId, me.accountId);
    return {
      listVersion: list.listVersion,
      devices: list.devices.map((d) => ({
        deviceId: d.deviceId,
        createdAt: d.createdAt,
        accountKeyHolder: (d.flags & DEVICE_FLAG_AIK_HOLDER) !== 0,
        thisDevice: mine && d.deviceId === me.device.deviceId,
      })),
    };
  }

  /**
   * Adds a new device to this account from the link code it shows (`Umbra.link` on the new device):
   * show `deviceId` of the result to the user, who compares it with the new device's. Account-key holders only.
   */
  async link(code: string, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<{ deviceId: number; listVersion: number }> {
    this.holder();
    return linkNewDevice(this.core.client, this.core.messenger, code, opts.timeoutMs, opts.signal);
  }

  /** Removes a device from this account: its sessions end and the servers drop its queue. Account-key holders only. */
  async remove(deviceId: number): Promise<{ listVersion: number; removedDeviceIds: number[] }> {
    const me = this.holder();
    if (deviceId === me.device.deviceId) throw new UmbraError('UNKNOWN_DEVICE', 'this device cannot remove itself (wipe it, and remove it from another device)');
    const current = await this.core.messenger.deviceList(me.accountIdText);
    if (!current.devices.some((d) => d.deviceId === deviceId)) throw new UmbraError('UNKNOWN_DEVICE', `device ${deviceId} is not in this account's device list`);
    return removeDevice(this.core.client, this.core.messenger, deviceId);
  }

  /** The safety number with a peer: compare it (or scan its QR) to be sure no one is in between. */
  async safetyNumber(peer: string): Promise<SafetyNumber> {
    this.core.assertOpen();
    const list = await this.core.messenger.deviceList(peer);
    const sn = this.core.messenger.safetyNumber(list.aik);
    return { digits: sn.digits, groups: sn.groups, qr: sn.qr };
  }

  /** True when a QR scanned from the peer's screen matches our safety number with them. */
  async verifySafetyQr(peer: string, scanned: string): Promise<boolean> {
    return verifySafetyQr((await this.safetyNumber(peer)).qr, scanned);
  }

  private holder() {
    this.core.assertOpen();
    const me = this.core.client.identity;
    if (!me.aikSk) throw new UmbraError('NOT_ACCOUNT_KEY_HOLDER', 'only a device holding the account key (the one that created the account) can do this');
    return me;
  }
}

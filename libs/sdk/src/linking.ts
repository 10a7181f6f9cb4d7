import {
  accountIdOf,
  b64uDecode,
  b64uEncode,
  bytesEqual,
  completeLink,
  concatBytes,
  createLinkReply,
  createPendingLink,
  createProvisioningMessage,
  DEVICE_FLAG_HEADER_ENCRYPTION,
  createSignedDeviceList,
  encodeAccountId,
  hexEncode,
  openProvisioningMessage,
  parseLinkQr,
  sha256,
  verifySignedDeviceList,
  CryptoError,
} from '@umbra/crypto';
import type { UmbraClient } from './client';
import { UmbraApiError } from './errors';
import { randomDeviceId, type LocalIdentity } from './identity';
import type { Messenger } from './messenger';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const channelOf = (eph: Uint8Array) => b64uEncode(sha256(eph));

async function poll<T>(fn: () => Promise<T>, timeoutMs: number, what: string, signal?: AbortSignal): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    signal?.throwIfAborted();
    try {
      return await fn();
    } catch (err) {
      const retry = err instanceof UmbraApiError && (err.code === 'NOT_FOUND' || err.code === 'DEVICE_NOT_IN_LIST' || err.retryable);
      if (!retry || Date.now() > deadline) throw err instanceof UmbraApiError && retry ? new UmbraApiError(0, 'UNAVAILABLE', `timed out waiting for ${what}`) : err;
      await sleep(500);
    }
  }
}

/** What a link code says about the device that shows it, for the user to compare on both screens. */
export interface LinkCodeInfo {
  deviceId: number;
  /** A short fingerprint of the new device's key, "xxxx xxxx xxxx xxxx" (the CLI prints the same). */
  keyFingerprint: string;
}

/** The device and key fingerprint a link code ("umbra-link:1:…") names; throws CryptoError when it is not a valid one. */
export function linkCodeInfo(code: string): LinkCodeInfo {
  const qr = parseLinkQr(code.trim());
  return { deviceId: qr.deviceId, keyFingerprint: hexEncode(sha256(qr.dik).slice(0, 8)).match(/.{4}/g)!.join(' ') };
}

/** The account a new device is about to join, shown to the user before linking goes on (§1). */
export interface LinkOffer {
  /** "um1…": compare it with the account id the existing device shows. */
  accountIdText: string;
  accountId: Uint8Array;
  /** The new device will also hold the account key. */
  aikHolder: boolean;
}

export interface LinkThisDeviceOptions {
  /** Show this LinkQR (as text or a QR code) to the device that holds the account key. */
  onQr: (qr: string) => void;
  /**
   * Called with the account the ProvisioningMessage links this device into, before this device
   * answers. Resolve true to go on; false (or throwing) stops linking: nothing is sent, nothing
   * stored. Without it linking goes on (show `identity.accountIdText` afterwards then).
   */
  confirmAccount?: (offer: LinkOffer) => boolean | Promise<boolean>;
  timeoutMs?: number;
  /** Stops waiting (rejects with the signal's reason); nothing is sent after it fired. */
  signal?: AbortSignal;
}

/** The user declined the account shown by `confirmAccount`. */
export class LinkDeclinedError extends Error {
  constructor(readonly accountIdText: string) {
    super(`linking into ${accountIdText} declined`);
    this.name = 'LinkDeclinedError';
  }
}

/**
 * The new device's side of linking (PROTOCOL.md §1): shows a LinkQR, opens the holder's
 * ProvisioningMessage, shows the account it links into (`confirmAccount`), proves possession of
 * its key, and waits until that account has published a signed device list that contains this
 * device's certificate. Returns the new identity (also saved in the client's store).
 */
export async function linkThisDevice(client: UmbraClient, options: LinkThisDeviceOptions): Promise<LocalIdentity>;
export async function linkThisDevice(client: UmbraClient, onQr: (qr: string) => void, timeoutMs?: number): Promise<LocalIdentity>;
export async function linkThisDevice(client: UmbraClient, arg: LinkThisDeviceOptions | ((qr: string) => void), timeout?: number): Promise<LocalIdentity> {
  const opts: LinkThisDeviceOptions = typeof arg === 'function' ? { onQr: arg, ...(timeout !== undefined ? { timeoutMs: timeout } : {}) } : arg;
  const timeoutMs = opts.timeoutMs ?? 600_000;
  const { pending, qr } = createPendingLink(randomDeviceId());
  opts.onQr(qr);
  const channel = channelOf(pending.eph);
  const { message } = await poll(() => client.http.request<{ message: string }>('GET', `/v1/provisioning/${channel}/message`), timeoutMs, 'the provisioning message', opts.signal);
  const opened = openProvisioningMessage(b64uDecode(message), pending);
  const accountId = accountIdOf(opened.tbs.aik);
  const offer: LinkOffer = { accountIdText: encodeAccountId(accountId), accountId, aikHolder: opened.aikSk !== undefined };
  if (opts.confirmAccount && !(await opts.confirmAccount(offer))) throw new LinkDeclinedError(offer.accountIdText);
  opts.signal?.throwIfAborted();
  const reply = createLinkReply(opened.tbsBytes, pending.dikSk);
  await client.http.request('PUT', `/v1/provisioning/${channel}/reply`, { body: { reply: b64uEncode(reply) } });
  const certificate = concatBytes(opened.tbsBytes, opened.aikSig, reply.slice(1));
  let identity: LocalIdentity = {
    accountId,
    accountIdText: encodeAccountId(accountId),
    aik: opened.tbs.aik,
    ...(opened.aikSk ? { aikSk: opened.aikSk } : {}),
    device: { deviceId: pending.deviceId, dikSk: pending.dikSk, dik: pending.dik, flags: opened.tbs.flags, certificate },
    deviceList: new Uint8Array(0),
    listVersion: 0,
  };
  await client.setIdentity(identity);
  await poll(() => client.authenticate(), timeoutMs, 'the new device list', opts.signal);
  const account = await client.getAccount(identity.accountIdText);
  // The list must be the confirmed account's, signed by its key, and certify this device's key under this device id.
  const list = verifySignedDeviceList(b64uDecode(account.deviceList));
  const mine = list.devices.find((d) => d.deviceId === pending.deviceId && bytesEqual(d.dik, pending.dik));
  if (!bytesEqual(list.accountId, accountId) || !mine) throw new CryptoError('MALFORMED', 'the device list served for this account does not contain this device');
  identity = { ...identity, device: { ...identity.device, certificate: mine.bytes, flags: mine.flags }, deviceList: list.bytes, listVersion: list.listVersion };
  await client.setIdentity(identity);
  await client.refillPrekeys();
  return identity;
}

/** The account-key holder's side: answers a LinkQR and publishes the list with the new device. */
export async function linkNewDevice(client: UmbraClient, messenger: Messenger, qr: string, timeoutMs = 600_000, signal?: AbortSignal): Promise<{ deviceId: number; listVersion: number }> {
  const me = client.identity;
  if (!me.aikSk) throw new Error('only a device holding the account key can link devices');
  const parsed = parseLinkQr(qr);
  const channel = channelOf(parsed.eph);
  const { message, tbs } = createProvisioningMessage(parsed, { aik: me.aik, aikSk: me.aikSk }, { createdAt: Date.now(), flags: DEVICE_FLAG_HEADER_ENCRYPTION });
  await client.api('PUT', `/v1/provisioning/${channel}/message`, { message: b64uEncode(message) });
  const { reply } = await poll(() => client.api<{ reply: string }>('GET', `/v1/provisioning/${channel}/reply`), timeoutMs, 'the new device', signal);
  const certificate = completeLink(b64uDecode(reply), tbs, me.aikSk);
  const current = await messenger.deviceList(me.accountIdText);
  const certs = [...current.devices.map((d) => ({ id: d.deviceId, bytes: d.bytes })), { id: parsed.deviceId, bytes: certificate }].sort((a, b) => a.id - b.id);
  const listVersion = current.listVersion + 1;
  const list = createSignedDeviceList({ aik: me.aik, listVersion, issuedAt: Date.now(), certificates: certs.map((c) => c.bytes) }, me.aikSk);
  await client.publishDeviceList(list, listVersion);
  return { deviceId: parsed.deviceId, listVersion };
}

/**
 * The account-key holder removes one of the account's other devices: it publishes the list without
 * it (revocation is omission, §1); the server signs that device out and stops delivering to it.
 */
export async function removeDevice(client: UmbraClient, messenger: Messenger, deviceId: number): Promise<{ listVersion: number; removedDeviceIds: number[] }> {
  const me = client.identity;
  if (!me.aikSk) throw new Error('only a device holding the account key can remove devices');
  if (deviceId === me.device.deviceId) throw new Error('this device cannot remove itself; wipe it instead');
  const current = await messenger.deviceList(me.accountIdText);
  if (!current.devices.some((d) => d.deviceId === deviceId)) throw new Error(`device ${deviceId} is not in this account's device list`);
  const listVersion = current.listVersion + 1;
  const certificates = current.devices.filter((d) => d.deviceId !== deviceId).map((d) => d.bytes);
  const list = createSignedDeviceList({ aik: me.aik, listVersion, issuedAt: Date.now(), certificates }, me.aikSk);
  return client.publishDeviceList(list, listVersion);
}

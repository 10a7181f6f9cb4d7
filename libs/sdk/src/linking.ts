import {
  accountIdOf,
  b64uDecode,
  b64uEncode,
  completeLink,
  concatBytes,
  createLinkReply,
  createPendingLink,
  createProvisioningMessage,
  DEVICE_FLAG_HEADER_ENCRYPTION,
  createSignedDeviceList,
  encodeAccountId,
  openProvisioningMessage,
  parseLinkQr,
  sha256,
} from '@umbra/crypto';
import type { UmbraClient } from './client';
import { UmbraApiError } from './errors';
import { randomDeviceId, type LocalIdentity } from './identity';
import type { Messenger } from './messenger';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const channelOf = (eph: Uint8Array) => b64uEncode(sha256(eph));

async function poll<T>(fn: () => Promise<T>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      const retry = err instanceof UmbraApiError && (err.code === 'NOT_FOUND' || err.code === 'DEVICE_NOT_IN_LIST' || err.retryable);
      if (!retry || Date.now() > deadline) throw err instanceof UmbraApiError && retry ? new UmbraApiError(0, 'UNAVAILABLE', `timed out waiting for ${what}`) : err;
      await sleep(500);
    }
  }
}

/**
 * The new device's side of linking (PROTOCOL.md §1): shows a LinkQR, opens the holder's
 * ProvisioningMessage, proves possession of its key, and waits until the holder has published a
 * device list that contains it. Returns the new identity (also saved in the client's store).
 */
export async function linkThisDevice(client: UmbraClient, onQr: (qr: string) => void, timeoutMs = 600_000): Promise<LocalIdentity> {
  const { pending, qr } = createPendingLink(randomDeviceId());
  onQr(qr);
  const channel = channelOf(pending.eph);
  const { message } = await poll(() => client.http.request<{ message: string }>('GET', `/v1/provisioning/${channel}/message`), timeoutMs, 'the provisioning message');
  const opened = openProvisioningMessage(b64uDecode(message), pending);
  const reply = createLinkReply(opened.tbsBytes, pending.dikSk);
  await client.http.request('PUT', `/v1/provisioning/${channel}/reply`, { body: { reply: b64uEncode(reply) } });
  const accountId = accountIdOf(opened.tbs.aik);
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
  await poll(() => client.authenticate(), timeoutMs, 'the new device list');
  const account = await client.getAccount(identity.accountIdText);
  identity = { ...identity, deviceList: b64uDecode(account.deviceList), listVersion: account.listVersion };
  await client.setIdentity(identity);
  await client.refillPrekeys();
  return identity;
}

/** The account-key holder's side: answers a LinkQR and publishes the list with the new device. */
export async function linkNewDevice(client: UmbraClient, messenger: Messenger, qr: string, timeoutMs = 600_000): Promise<{ deviceId: number; listVersion: number }> {
  const me = client.identity;
  if (!me.aikSk) throw new Error('only a device holding the account key can link devices');
  const parsed = parseLinkQr(qr);
  const channel = channelOf(parsed.eph);
  const { message, tbs } = createProvisioningMessage(parsed, { aik: me.aik, aikSk: me.aikSk }, { createdAt: Date.now(), flags: DEVICE_FLAG_HEADER_ENCRYPTION });
  await client.api('PUT', `/v1/provisioning/${channel}/message`, { message: b64uEncode(message) });
  const { reply } = await poll(() => client.api<{ reply: string }>('GET', `/v1/provisioning/${channel}/reply`), timeoutMs, 'the new device');
  const certificate = completeLink(b64uDecode(reply), tbs, me.aikSk);
  const current = await messenger.deviceList(me.accountIdText);
  const certs = [...current.devices.map((d) => ({ id: d.deviceId, bytes: d.bytes })), { id: parsed.deviceId, bytes: certificate }].sort((a, b) => a.id - b.id);
  const listVersion = current.listVersion + 1;
  const list = createSignedDeviceList({ aik: me.aik, listVersion, issuedAt: Date.now(), certificates: certs.map((c) => c.bytes) }, me.aikSk);
  await client.publishDeviceList(list, listVersion);
  return { deviceId: parsed.deviceId, listVersion };
}

import { linkCodeInfo, Umbra, webFiles, type LinkCodeInfo, type LinkOffer } from '@umbra/sdk';
import { webCallMedia } from './call-media.service';
import { IdbStore } from './idb.store';
import { DEVICE_DB, rememberHandle, WebSession, type WebUmbra } from './session.service';

const LINK_PREFIX = 'umbra-link:1:';

/** One device of this account, as the "this device" page lists it. */
export interface DeviceEntry {
  deviceId: number;
  createdAt: number;
  /** Holds the account key (can link and remove devices). */
  accountKey: boolean;
  current: boolean;
}

/** The device a pasted link code names, or a message saying what is wrong with the text. */
export function inspectLinkCode(text: string): { code: string; info: LinkCodeInfo } | { error: string } {
  const code = text.trim();
  if (!code) return { error: 'Paste the link code the new device shows.' };
  if (!code.startsWith(LINK_PREFIX)) return { error: `That is not a link code: it starts with ${LINK_PREFIX}` };
  try {
    return { code, info: linkCodeInfo(code) };
  } catch {
    return { error: 'That link code is damaged: copy all of it, from umbra-link:1: to the end.' };
  }
}

export interface LinkThisBrowserOptions {
  origin: string;
  /** The link code to show (as text and QR) and what it says about this browser's new device. */
  onCode: (code: string, info: LinkCodeInfo) => void;
  /** The account the existing device offers; resolve true only when the user confirmed it (§1). */
  confirm: (offer: LinkOffer) => Promise<boolean>;
  signal: AbortSignal;
}

/**
 * Makes this browser a new device of an existing account (PROTOCOL.md §1, the new device's side):
 * shows a link code, waits for a device holding the account key to answer it, lets the user
 * confirm the account, and returns the session once the account's device list contains this
 * device. On failure or decline nothing of the half-made device is kept.
 */
export async function linkThisBrowser(opts: LinkThisBrowserOptions): Promise<WebSession> {
  await IdbStore.wipe(DEVICE_DB);
  const store = await IdbStore.open(DEVICE_DB);
  let umbra: WebUmbra;
  try {
    umbra = await Umbra.link({
      serverUrl: opts.origin,
      store,
      files: webFiles(),
      calls: webCallMedia.options,
      connect: false,
      onQr: (code) => opts.onCode(code, linkCodeInfo(code)),
      confirmAccount: opts.confirm,
      signal: opts.signal,
    });
  } catch (err) {
    store.close();
    await IdbStore.wipe(DEVICE_DB).catch(() => undefined);
    throw err;
  }
  // The handle is only shown: without it the page shows none.
  const handle = (await umbra.account.lookup(umbra.account.id).catch(() => undefined))?.handle;
  await rememberHandle(store, handle);
  const session = await WebSession.over(umbra, store, handle);
  // The socket reconnects on its own; the page shows "connecting…" until it is up.
  void umbra.connect().catch(() => undefined);
  return session;
}

/** Whether this device holds the account key, i.e. can link and remove devices. */
export function holdsAccountKey(session: WebSession): boolean {
  return session.umbra.account.accountKeyHolder;
}

/** The existing device's side: answers the code, waits for the new device, publishes the list with it. */
export function approveLink(session: WebSession, code: string, signal?: AbortSignal): Promise<{ deviceId: number; listVersion: number }> {
  return session.umbra.devices.link(code, { timeoutMs: 600_000, ...(signal ? { signal } : {}) });
}

/** This account's verified device list. */
export async function listDevices(session: WebSession): Promise<DeviceEntry[]> {
  const { devices } = await session.umbra.devices.list();
  return devices.map((d) => ({ deviceId: d.deviceId, createdAt: d.createdAt, accountKey: d.accountKeyHolder, current: d.thisDevice }));
}

export async function removeOtherDevice(session: WebSession, deviceId: number): Promise<void> {
  await session.umbra.devices.remove(deviceId);
}

import {
  SUITE_V1,
  createDeviceCertificate,
  createSignedDeviceList,
  generateSecretKey,
  pub,
} from '@umbra/crypto';
import { MemoryStore, Messenger, UmbraClient, randomDeviceId, type LocalIdentity, type ReceivedMessage } from '@umbra/sdk';

export interface E2eeDevice {
  store: MemoryStore;
  client: UmbraClient;
  messenger: Messenger;
  inbox: ReceivedMessage[];
  errors: unknown[];
}

export interface DeviceOptions {
  /** Injected time for the SDK (share the stack's ManualClock). */
  now?: () => number;
}

async function wire(origin: string, setup: (c: UmbraClient) => Promise<void>, opts: DeviceOptions = {}): Promise<E2eeDevice> {
  const store = new MemoryStore();
  const client = await UmbraClient.open({ serverUrl: origin, store, sendTimeoutMs: 10_000, ...(opts.now ? { now: opts.now } : {}) });
  await setup(client);
  await client.refillPrekeys();
  const messenger = await Messenger.open(client, store, opts.now);
  const d: E2eeDevice = { store, client, messenger, inbox: [], errors: [] };
  messenger.on('message', (m) => {
    d.inbox.push(m);
  });
  messenger.on('error', (err) => d.errors.push(err));
  await client.connect();
  return d;
}

/** A new registered account with its first device, prekeys uploaded, connected. */
export function newAccount(origin: string, opts: DeviceOptions = {}): Promise<E2eeDevice> {
  return wire(origin, async (c) => {
    await c.createIdentity();
    await c.register();
  }, opts);
}

/** Certifies a new device with the owner's account key and publishes the longer list. */
export async function linkDevice(origin: string, owner: E2eeDevice, opts: DeviceOptions = {}): Promise<E2eeDevice> {
  const id = owner.client.identity;
  const dikSk = generateSecretKey();
  const deviceId = randomDeviceId();
  const now = Date.now();
  const certificate = createDeviceCertificate({ suite: SUITE_V1, aik: id.aik, deviceId, dik: pub(dikSk), createdAt: now, flags: 0 }, id.aikSk!, dikSk);
  const current = (await owner.messenger.deviceList(id.accountIdText)).devices.map((d) => ({ id: d.deviceId, bytes: d.bytes }));
  const certs = [...current, { id: deviceId, bytes: certificate }].sort((a, b) => a.id - b.id).map((c) => c.bytes);
  const listVersion = id.listVersion + 1;
  const list = createSignedDeviceList({ aik: id.aik, listVersion, issuedAt: now, certificates: certs }, id.aikSk!);
  await owner.client.publishDeviceList(list, listVersion);
  const identity: LocalIdentity = { accountId: id.accountId, accountIdText: id.accountIdText, aik: id.aik, device: { deviceId, dikSk, dik: pub(dikSk), flags: 0, certificate }, deviceList: list, listVersion };
  return wire(origin, (c) => c.setIdentity(identity), opts);
}

import { MemoryStore, Messenger, UmbraClient, linkNewDevice, linkThisDevice, type KeyValueStore, type LinkOffer, type ReceivedMessage, type StoreWrite } from '@umbra/sdk';
import { parseSignedDeviceList, b64uDecode, b64uEncode, bytesEqual } from '@umbra/crypto';
import type { DeliveredEnvelope } from '@umbra/protocol';
import { TestStack, waitFor } from './support/harness';

/** The SDK's store interface with writes that fail on demand, as a full disk or a locked database would. */
class FailingStore implements KeyValueStore {
  readonly inner = new MemoryStore();
  failing = false;
  refused = 0;

  private check(): void {
    if (this.failing) {
      this.refused++;
      throw new Error('store unavailable (test)');
    }
  }
  get(key: string) {
    return this.inner.get(key);
  }
  keys(prefix: string) {
    return this.inner.keys(prefix);
  }
  async set(key: string, value: string) {
    this.check();
    await this.inner.set(key, value);
  }
  async delete(key: string) {
    this.check();
    await this.inner.delete(key);
  }
  async batch(writes: readonly StoreWrite[]) {
    this.check();
    await this.inner.batch(writes);
  }
}

interface Device<S extends KeyValueStore = KeyValueStore> {
  store: S;
  client: UmbraClient;
  messenger: Messenger;
  inbox: ReceivedMessage[];
  errors: unknown[];
  wire: DeliveredEnvelope[];
}

describe('SDK receive path: replay cache, ack after durable store, linking shows the account', () => {
  let stack: TestStack;
  const devices: Device[] = [];

  beforeAll(async () => {
    stack = await TestStack.start({ env: { RATE_LIMIT_REGISTER_PER_IP_PER_HOUR: '1000' } });
  });
  afterAll(async () => {
    for (const d of devices) await d.client.close();
    await stack.stop();
  });

  /** A registered, connected device; `oneTimeKeys: 0` uploads only the SPK and the last-resort KEM key. */
  async function device<S extends KeyValueStore>(store: S, opts: { oneTimeKeys?: number } = {}): Promise<Device<S>> {
    const client = await UmbraClient.open({ serverUrl: stack.origin, store, sendTimeoutMs: 10_000 });
    await client.createIdentity();
    await client.register();
    if (opts.oneTimeKeys === undefined) await client.refillPrekeys();
    else {
      await client.api('PUT', '/v1/keys', await client.prekeys.buildUpload(undefined, opts.oneTimeKeys));
      await client.prekeys.markUploaded();
    }
    const messenger = await Messenger.open(client, store);
    const d: Device<S> = { store, client, messenger, inbox: [], errors: [], wire: [] };
    client.on('message', (env) => {
      d.wire.push(env);
    });
    messenger.on('message', (m) => {
      d.inbox.push(m);
    });
    messenger.on('error', (err) => d.errors.push(err));
    await client.connect();
    devices.push(d);
    return d;
  }

  const texts = (d: Device) => d.inbox.map((m) => m.content.text);
  const to = (d: Device) => d.client.identity.accountIdText;

  it('rejects a replayed initial PreKeyMessage (SPK and last-resort KEM key only): no new session, nothing shown twice, the session keeps working', async () => {
    const bob = await device(new MemoryStore(), { oneTimeKeys: 0 });
    const alice = await device(new MemoryStore());
    const retries: unknown[] = [];
    alice.messenger.on('retry', (r) => retries.push(r));
    await alice.messenger.sendText(to(bob), 'hello');
    await waitFor(() => bob.inbox.length === 1, 10_000, 'the first message');
    const initial = bob.wire.find((e) => e.type === 1)!;
    // Used no one-time key: only the replay cache can tell a second copy from a new session.
    expect(Buffer.from(initial.content, 'base64url')[1 + 211 + 4]).toBe(0);
    const replay = () => alice.client.send({ recipients: [{ accountId: to(bob), deviceId: bob.client.identity.device.deviceId, type: 1, content: initial.content }] });

    // While the session exists the ratchet refuses the used message key.
    await replay();
    await waitFor(() => bob.errors.length === 1, 10_000, 'the first replay to be refused');
    expect(bob.errors[0]).toMatchObject({ code: 'REPLAY' });
    await alice.messenger.sendText(to(bob), 'still here');
    await waitFor(() => bob.inbox.length === 2, 10_000, 'a message over the same session');
    await bob.messenger.sendText(to(alice), 'and back');
    await waitFor(() => alice.inbox.length === 1, 10_000, 'the reply');

    // Without the session (lost state), the same initial message would set it up again: the replay cache refuses it.
    for (const k of await bob.store.keys('session/')) await bob.store.delete(k);
    await replay();
    await waitFor(() => bob.errors.length === 2, 10_000, 'the second replay to be refused');
    expect(bob.errors[1]).toMatchObject({ code: 'REPLAY' });
    expect(await bob.store.keys('session/')).toEqual([]);
    expect(texts(bob)).toEqual(['hello', 'still here']);
    expect(retries).toEqual([]);
    await bob.client.settle();
    await waitFor(async () => (await bob.client.fetchMessages()).messages.length === 0, 5000, 'every envelope acked');
  });

  it('acks an envelope only once its result is stored: a failing store leaves it queued, and it is shown exactly once after the store recovers', async () => {
    const bob = await device(new FailingStore());
    const alice = await device(new MemoryStore());
    await alice.messenger.sendText(to(bob), 'before');
    await waitFor(() => bob.inbox.length === 1, 10_000, 'the first message');

    bob.store.failing = true;
    const sent = await alice.messenger.sendText(to(bob), 'stored later');
    expect(sent).toBeDefined();
    await waitFor(() => bob.errors.length >= 1, 10_000, 'the failed store');
    await bob.client.settle();
    await new Promise((r) => setTimeout(r, 300));
    // Not acked: the server still holds it for this device.
    const queued = await bob.client.fetchMessages();
    expect(queued.messages).toHaveLength(1);
    expect(texts(bob)).toEqual(['before']);
    // Delivered again (the SDK reconnects to re-drain) and refused again while the store is down.
    await waitFor(() => bob.errors.length >= 2, 10_000, 'a second delivery while the store fails');
    expect(texts(bob)).toEqual(['before']);
    expect((await bob.client.fetchMessages()).messages).toHaveLength(1);

    bob.store.failing = false;
    await waitFor(() => bob.inbox.length === 2, 15_000, 'the message after the store recovered');
    await bob.client.settle();
    await waitFor(async () => (await bob.client.fetchMessages()).messages.length === 0, 5000, 'the ack');
    // A restart over the same store: nothing comes back, nothing is shown twice.
    await bob.client.close();
    const client = await UmbraClient.open({ serverUrl: stack.origin, store: bob.store, sendTimeoutMs: 10_000 });
    const messenger = await Messenger.open(client, bob.store);
    const again: ReceivedMessage[] = [];
    messenger.on('message', (m) => {
      again.push(m);
    });
    let drained = false;
    client.on('queueEmpty', () => (drained = true));
    await client.connect();
    devices.push({ ...bob, client, messenger });
    await waitFor(() => drained, 10_000, 'the drain after restart');
    await alice.messenger.sendText(to(bob), 'after');
    await waitFor(() => again.length === 1, 10_000, 'a later message');
    expect([...texts(bob), ...again.map((m) => m.content.text)]).toEqual(['before', 'stored later', 'after']);
    expect((await messenger.history.list(to(alice))).map((e) => e.content.text)).toEqual(['before', 'stored later', 'after']);
  });

  async function newDeviceClient(): Promise<UmbraClient> {
    const client = await UmbraClient.open({ serverUrl: stack.origin, store: new MemoryStore(), sendTimeoutMs: 10_000 });
    devices.push({ store: new MemoryStore(), client, messenger: undefined as never, inbox: [], errors: [], wire: [] });
    return client;
  }

  it('shows the new device the account it is being linked into before it answers, and checks the list it joins', async () => {
    const owner = await device(new MemoryStore());
    const client = await newDeviceClient();
    const offers: LinkOffer[] = [];
    let holderDone = false;
    let qr!: (code: string) => void;
    const code = new Promise<string>((r) => (qr = r));
    const linking = linkThisDevice(client, {
      onQr: qr,
      confirmAccount: (offer) => {
        // Asked before the LinkReply exists, so the holder cannot have finished.
        expect(holderDone).toBe(false);
        offers.push(offer);
        return true;
      },
      timeoutMs: 20_000,
    });
    const holder = linkNewDevice(owner.client, owner.messenger, await code, 20_000).then((r) => ((holderDone = true), r));
    const [identity, linked] = await Promise.all([linking, holder]);
    expect(offers).toHaveLength(1);
    expect(offers[0]).toMatchObject({ accountIdText: to(owner), aikHolder: false });
    expect(bytesEqual(offers[0]!.accountId, owner.client.identity.accountId)).toBe(true);
    expect(identity.accountIdText).toBe(to(owner));
    const list = parseSignedDeviceList(identity.deviceList);
    expect(list.listVersion).toBe(linked.listVersion);
    expect(list.devices.some((d) => d.deviceId === identity.device.deviceId && bytesEqual(d.bytes, identity.device.certificate))).toBe(true);
    // The linked device works: it authenticates and receives.
    expect(await client.authenticate()).toEqual(expect.any(String));
  });

  it('refuses to finish linking when the server serves a device list without this device (e.g. the old one): key transparency calls it a rollback', async () => {
    const owner = await device(new MemoryStore());
    const stale = b64uEncode(owner.client.identity.deviceList);
    // A server that keeps answering the account lookup with the list from before the link.
    const lying: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      if ((init?.method ?? 'GET') !== 'GET' || !String(input).includes('/v1/accounts/') || res.status !== 200) return res;
      const body = (await res.json()) as { deviceList: string };
      return new Response(JSON.stringify({ ...body, deviceList: stale }), { status: 200, headers: { 'content-type': 'application/json' } });
    };
    const client = await UmbraClient.open({ serverUrl: stack.origin, store: new MemoryStore(), fetch: lying });
    devices.push({ store: new MemoryStore(), client, messenger: undefined as never, inbox: [], errors: [], wire: [] });
    let qr!: (code: string) => void;
    const code = new Promise<string>((r) => (qr = r));
    const linking = linkThisDevice(client, { onQr: qr, confirmAccount: () => true, timeoutMs: 20_000 });
    await linkNewDevice(owner.client, owner.messenger, await code, 20_000);
    // Key transparency catches it first: the log already holds the list with this device (a newer
    // version), so the stale one is a rollback. (Without KT the list check refused it: MALFORMED,
    // "does not contain this device"; that check still runs after KT.)
    await expect(linking).rejects.toMatchObject({ name: 'KtVerificationError', reason: 'version-rollback' });
  });

  it('declining the account shown stops linking: no reply, no new device in the list, nothing stored', async () => {
    const owner = await device(new MemoryStore());
    const before = owner.client.identity.listVersion;
    const client = await newDeviceClient();
    let qr!: (code: string) => void;
    const code = new Promise<string>((r) => (qr = r));
    const linking = linkThisDevice(client, { onQr: qr, confirmAccount: () => false, timeoutMs: 20_000 });
    const holder = linkNewDevice(owner.client, owner.messenger, await code, 3000);
    await expect(linking).rejects.toMatchObject({ name: 'LinkDeclinedError', accountIdText: to(owner) });
    await expect(holder).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(client.hasIdentity).toBe(false);
    const account = await owner.client.getAccount(to(owner));
    expect(account.listVersion).toBe(before);
    expect(parseSignedDeviceList(b64uDecode(account.deviceList)).devices).toHaveLength(1);
  });
});

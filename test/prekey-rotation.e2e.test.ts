import { PREKEY_KIND, b64uDecode, parsePreKeyBundle } from '@umbra/crypto';
import { ManualClock } from '@umbra/server';
import { MemoryStore, Messenger, UmbraClient, type ReceivedMessage } from '@umbra/sdk';
import { TestStack, waitFor } from './support/harness';

const DAY = 86_400_000;

interface Device {
  store: MemoryStore;
  client: UmbraClient;
  messenger: Messenger;
  inbox: ReceivedMessage[];
  errors: unknown[];
}

describe('signed prekey rotation (PROTOCOL.md §2) across 40 simulated days', () => {
  const clock = new ManualClock(Date.now());
  const now = () => clock.now();
  let stack: TestStack;
  const devices: Device[] = [];

  beforeAll(async () => {
    // Tokens last a day, so each simulated day costs every device a new token within seconds of real time.
    stack = await TestStack.start({ overrides: { clock }, env: { RATE_LIMIT_REGISTER_PER_IP_PER_HOUR: '1000', RATE_LIMIT_TOKEN_PER_DEVICE_PER_MINUTE: '1000' } });
  });
  afterAll(async () => {
    for (const d of devices) await d.client.close();
    await stack.stop();
  });

  /** A device over `store` (new identity when the store has none); the SDK checks rotation every 20 ms here. */
  async function open(store: MemoryStore, opts: { oneTimeKeys?: number; connect?: boolean } = {}): Promise<Device> {
    const client = await UmbraClient.open({ serverUrl: stack.origin, store, now, sendTimeoutMs: 10_000, prekeyCheckIntervalMs: 20 });
    if (!client.hasIdentity) {
      await client.createIdentity();
      await client.register();
      await client.api('PUT', '/v1/keys', await client.prekeys.buildUpload(undefined, opts.oneTimeKeys ?? 100));
      await client.prekeys.markUploaded();
    }
    const messenger = await Messenger.open(client, store, now);
    const d: Device = { store, client, messenger, inbox: [], errors: [] };
    messenger.on('message', (m) => {
      d.inbox.push(m);
    });
    messenger.on('error', (err) => d.errors.push(err));
    if (opts.connect !== false) await client.connect();
    devices.push(d);
    return d;
  }

  const spkOf = async (d: Device) => (await d.client.prekeys.signedKeys()).current.find((k) => k.kind === PREKEY_KIND.SPK)!;
  const servedSpk = async (from: Device, of: Device) => parsePreKeyBundle(b64uDecode((await from.client.fetchBundles(of.client.identity.accountIdText)).bundles[0]!.bundle)).signedPreKey;

  it('a device left running for 40 days can still be reached by a new peer: the SDK rotates on its own', async () => {
    const bob = await open(new MemoryStore());
    const alice = await open(new MemoryStore());
    const start = clock.now();
    for (let d = 1; d <= 40; d++) {
      clock.advance(DAY);
      // Whatever the SDK does, it does on its own timer: the served SPK must never be 7 or more days old.
      await waitFor(async () => now() - (await servedSpk(alice, bob)).createdAt < 7 * DAY, 5000, `a fresh SPK on day ${d}`);
    }
    expect(clock.now() - start).toBe(40 * DAY);
    const carol = await open(new MemoryStore());
    await carol.messenger.sendText(bob.client.identity.accountIdText, 'day 40');
    await waitFor(() => bob.inbox.length === 1, 10_000, 'the message on day 40');
  });

  it('rotates every 7 days, still decrypts a message made against the replaced key, deletes keys replaced 30 days ago, and can be reached on day 40', async () => {
    const start = clock.now();
    const day = () => Math.round((clock.now() - start) / DAY);
    // Bob publishes no one-time keys, so first contact uses the SPK and last-resort KEM key only.
    let bob = await open(new MemoryStore(), { oneTimeKeys: 0 });
    const alice = await open(new MemoryStore());
    const spk0 = await spkOf(bob);
    const pqlr0 = (await bob.client.prekeys.signedKeys()).current.find((k) => k.kind === PREKEY_KIND.PQLR)!;

    // Day 6: Bob is offline; Alice's first message is made against SPK0 and waits in his queue.
    clock.advance(6 * DAY);
    await bob.client.close();
    expect((await servedSpk(alice, bob)).keyId).toBe(spk0.keyId);
    await alice.messenger.sendText(bob.client.identity.accountIdText, 'in flight');

    // Day 8: Bob comes back (same store); SPK0 is 8 days old, so he rotates before he drains his queue.
    clock.advance(2 * DAY);
    bob = await open(bob.store, { connect: false });
    await bob.client.maintainPrekeys();
    expect(await spkOf(bob)).toMatchObject({ uploaded: true, createdAt: start + 8 * DAY });
    expect((await spkOf(bob)).keyId).not.toBe(spk0.keyId);
    await bob.client.connect();
    await waitFor(() => bob.inbox.length === 1, 10_000, 'the in-flight message');
    expect(bob.inbox[0]!.content.text).toBe('in flight');
    expect(bob.errors).toEqual([]);
    const rotations = [{ day: day(), keyId: (await spkOf(bob)).keyId }];
    const keys = await bob.client.prekeys.signedKeys();
    expect(keys.retired.map((r) => r.keyId).sort()).toEqual([spk0.keyId, pqlr0.keyId].sort());
    expect(await bob.client.prekeys.secret(PREKEY_KIND.SPK, spk0.keyId)).toBeDefined();
    expect(await bob.store.keys(`replay/${spk0.keyId}/`)).toHaveLength(1);
    expect((await servedSpk(alice, bob)).keyId).toBe(rotations[0]!.keyId);

    // Days 9–40, one day at a time: the running SDK notices each due rotation on its own.
    while (day() < 40) {
      clock.advance(DAY);
      await waitFor(async () => !(await bob.client.prekeys.rotationDue()), 10_000, `rotation check on day ${day()}`);
      const current = await spkOf(bob);
      if (current.keyId !== rotations.at(-1)!.keyId) rotations.push({ day: day(), keyId: current.keyId });
    }
    expect(rotations.map((r) => r.day)).toEqual([8, 15, 22, 29, 36]);
    const served = await servedSpk(alice, bob);
    expect(served.keyId).toBe(rotations.at(-1)!.keyId);
    expect(served.createdAt).toBe(start + 36 * DAY);

    // SPK0 and its last-resort KEM key were replaced on day 8: deleted 30 days later, with their replay cache.
    await waitFor(async () => (await bob.client.prekeys.secret(PREKEY_KIND.SPK, spk0.keyId)) === undefined, 10_000, 'SPK0 deleted');
    expect(await bob.client.prekeys.secret(PREKEY_KIND.PQLR, pqlr0.keyId)).toBeUndefined();
    expect(await bob.store.keys(`replay/${spk0.keyId}/`)).toEqual([]);
    // The SPK replaced on day 15 (25 days ago) is still kept.
    expect(await bob.client.prekeys.secret(PREKEY_KIND.SPK, rotations[0]!.keyId)).toBeDefined();
    expect((await bob.client.prekeys.signedKeys()).retired.map((r) => r.keyId)).not.toContain(spk0.keyId);

    // Day 40: a new peer can start a session (the served SPK is 4 days old), and Alice's session still works.
    const carol = await open(new MemoryStore());
    await carol.messenger.sendText(bob.client.identity.accountIdText, 'day 40');
    await alice.messenger.sendText(bob.client.identity.accountIdText, 'still here');
    await waitFor(() => bob.inbox.length === 3, 10_000, 'messages on day 40');
    expect(bob.inbox.map((m) => m.content.text).sort()).toEqual(['day 40', 'in flight', 'still here']);
    await bob.messenger.sendText(carol.client.identity.accountIdText, 'hi carol');
    await waitFor(() => carol.inbox.length === 1, 10_000, 'the reply to carol');
    expect(bob.errors).toEqual([]);
  });
});

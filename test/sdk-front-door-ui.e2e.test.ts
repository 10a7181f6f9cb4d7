import { MemoryStore, Umbra, webFiles, type UmbraEvent, type UmbraEventOf } from '@umbra/sdk';
import { TestStack, waitFor } from './support/harness';

type WebUmbra = Umbra<Parameters<ReturnType<typeof webFiles>['upload']>[1], undefined, Blob>;

interface Device {
  umbra: WebUmbra;
  events: UmbraEvent[];
}

function of<T extends UmbraEvent['type']>(d: Device, type: T): UmbraEventOf<T>[] {
  return d.events.filter((e): e is UmbraEventOf<T> => e.type === type);
}

/** What the web client needs from the front door beyond the CLI: group events, receipts in batches, contacts, resumable uploads (issue 16). */
describe('the SDK front door as a UI uses it', () => {
  let stack: TestStack;
  const open: Device[] = [];
  let alice: Device;
  let bob: Device;
  let carol: Device;

  async function create(handle?: string): Promise<Device> {
    const umbra = await Umbra.create({ serverUrl: stack.origin, store: new MemoryStore(), sendTimeoutMs: 10_000, files: webFiles(), ...(handle ? { handle } : {}) });
    const d: Device = { umbra, events: [] };
    umbra.onAny((e) => void d.events.push(e));
    open.push(d);
    return d;
  }

  beforeAll(async () => {
    stack = await TestStack.start({ withS3: true, env: { RATE_LIMIT_REGISTER_PER_IP_PER_HOUR: '1000' } });
    const tag = Date.now().toString(36).slice(-6);
    [alice, bob, carol] = [await create(`ui_alice_${tag}`), await create(), await create()];
  });
  afterAll(async () => {
    for (const d of open) await d.umbra.close().catch(() => undefined);
    await stack?.stop();
  });

  it('a named group reaches its members as a group event before any message', async () => {
    const gid = await alice.umbra.groups.create([bob.umbra.account.id], 'Weekend');
    await waitFor(() => of(bob, 'group').some((e) => e.gid === gid), 10_000, 'the group event');
    expect(of(bob, 'group').find((e) => e.gid === gid)?.from).toBe(alice.umbra.account.id);
    expect((await bob.umbra.groups.get(gid))?.name).toBe('Weekend');
    await expect(alice.umbra.groups.create([bob.umbra.account.id], 'x'.repeat(101))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('typing in a group names the group; a group id claimed by a non-member is dropped', async () => {
    const gid = await alice.umbra.groups.create([bob.umbra.account.id], 'Typing');
    await waitFor(() => of(bob, 'group').some((e) => e.gid === gid), 10_000, 'the group event');
    await alice.umbra.messages.typing(gid, 'started');
    await waitFor(() => of(bob, 'typing').some((e) => e.conv === gid && e.from === alice.umbra.account.id), 10_000, 'typing in the group');
    // carol is not in the group: her claim of its id does not make bob show her typing there.
    const before = of(bob, 'typing').length;
    await carol.umbra.client.typing(bob.umbra.account.id, 'started', gid);
    await carol.umbra.messages.typing(bob.umbra.account.id, 'started');
    await waitFor(() => of(bob, 'typing').some((e) => e.from === carol.umbra.account.id), 10_000, "carol's 1:1 typing");
    expect(of(bob, 'typing').slice(before).filter((e) => e.from === carol.umbra.account.id).map((e) => e.conv)).toEqual([carol.umbra.account.id]);
  });

  it('markDelivered and readAll give the author one delivered and one read receipt for a batch', async () => {
    const conv = alice.umbra.account.id;
    const sent = [await alice.umbra.messages.send(bob.umbra.account.id, 'one'), await alice.umbra.messages.send(bob.umbra.account.id, 'two')];
    const ids = sent.map((s) => s.id);
    await waitFor(async () => (await bob.umbra.messages.history(conv)).length >= 2, 10_000, 'both messages');
    expect(await bob.umbra.messages.markDelivered(conv, ids)).toBe(1);
    await waitFor(() => of(alice, 'receipt').some((r) => r.kind === 'delivered'), 10_000, 'the delivered receipt');
    expect((await bob.umbra.messages.readAll(conv)).sort()).toEqual([...ids].sort());
    await waitFor(() => of(alice, 'receipt').some((r) => r.kind === 'read'), 10_000, 'the read receipt');
    const read = of(alice, 'receipt').filter((r) => r.kind === 'read');
    expect(read).toHaveLength(1);
    expect(read[0]!.kind === 'read' && [...read[0]!.ids].sort()).toEqual([...ids].sort());
    expect(await bob.umbra.messages.readAll(conv)).toEqual([]);
  });

  it('lookup gives the handle with the id; compare marks a contact verified only on its own code', async () => {
    const handle = (await alice.umbra.account.handle())!;
    expect(await bob.umbra.account.lookup(`@${handle}`)).toEqual({ id: alice.umbra.account.id, handle });
    expect(await bob.umbra.account.lookup(alice.umbra.account.id)).toEqual({ id: alice.umbra.account.id, handle });
    expect((await bob.umbra.account.lookup(carol.umbra.account.id)).handle).toBeUndefined();

    const peer = alice.umbra.account.id;
    const theirs = await alice.umbra.devices.safetyNumber(bob.umbra.account.id);
    const wrong = await carol.umbra.devices.safetyNumber(bob.umbra.account.id);
    expect(await bob.umbra.contacts.compare(peer, wrong.qr)).toBe(false);
    expect(await bob.umbra.contacts.verification(peer)).toBeUndefined();
    expect(await bob.umbra.contacts.compare(peer, theirs.qr)).toBe(true);
    expect((await bob.umbra.contacts.verification(peer))?.safetyNumber).toBe(theirs.digits);
    await expect(bob.umbra.contacts.markVerified(peer, '0'.repeat(60))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('a handle that moves to another account is an identity-change event, listed until acknowledged', async () => {
    const handle = (await alice.umbra.account.handle())!;
    await alice.umbra.account.clearHandle();
    await carol.umbra.account.setHandle(handle);
    const changes = await bob.umbra.contacts.changes(alice.umbra.account.id, { recheck: true });
    expect(changes).toEqual([expect.objectContaining({ handle, previous: alice.umbra.account.id, current: carol.umbra.account.id })]);
    expect(of(bob, 'identity-change').map((e) => e.change.handle)).toEqual([handle]);
    expect(await bob.umbra.contacts.verification(alice.umbra.account.id)).toBeUndefined();
    await bob.umbra.contacts.acknowledge(changes[0]!);
    expect(await bob.umbra.contacts.changes(carol.umbra.account.id)).toEqual([]);
  });

  it('an interrupted resumable upload is listed with its tag until abandoned', async () => {
    const conv = bob.umbra.account.id;
    const stop = new AbortController();
    const blob = new Blob([new Uint8Array(64 * 1024).fill(7)], { type: 'application/octet-stream' });
    stop.abort(new Error('reload'));
    await expect(alice.umbra.files.send(conv, blob, { resume: { key: 'k1', tag: conv }, signal: stop.signal })).rejects.toBeDefined();
    expect((await alice.umbra.files.pending()).map((p) => [p.key, p.tag, p.size])).toEqual([['k1', conv, blob.size]]);
    await alice.umbra.files.abandon('k1');
    expect(await alice.umbra.files.pending()).toEqual([]);
  });
});

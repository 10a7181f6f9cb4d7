import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MemoryStore, Umbra, UmbraApiError, UmbraError, webFiles, type UmbraEvent, type UmbraEventOf } from '@umbra/sdk';
import { nodeFiles } from '@umbra/sdk/node';
import { TestStack, waitFor } from './support/harness';

type NodeUmbra = Umbra<Parameters<ReturnType<typeof nodeFiles>['upload']>[1], string, void>;

/** An instance and every event it emitted, in order. */
interface Device {
  umbra: NodeUmbra;
  store: MemoryStore;
  events: UmbraEvent[];
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

function record(umbra: NodeUmbra, store: MemoryStore): Device {
  const d: Device = { umbra, store, events: [] };
  umbra.onAny((e) => void d.events.push(e));
  return d;
}

function of<T extends UmbraEvent['type']>(d: Device, type: T): UmbraEventOf<T>[] {
  return d.events.filter((e): e is UmbraEventOf<T> => e.type === type);
}

/** Message and update events per content id: each must have arrived exactly once. */
function counts(d: Device): Map<string, number> {
  const n = new Map<string, number>();
  for (const e of d.events) if (e.type === 'message' || e.type === 'update') n.set(e.message.content.id, (n.get(e.message.content.id) ?? 0) + 1);
  return n;
}

function expectOnceEach(d: Device): void {
  const dupes = [...counts(d)].filter(([, n]) => n !== 1);
  expect(dupes).toEqual([]);
}

describe('the SDK front door: Umbra.create/open/link, one event stream (issue 16)', () => {
  let stack: TestStack;
  let dir: string;
  const open: Device[] = [];
  let alice: Device;
  let bob: Device;
  let carol: Device;

  async function create(): Promise<Device> {
    const store = new MemoryStore();
    const d = record(await Umbra.create({ serverUrl: stack.origin, store, sendTimeoutMs: 10_000, files: nodeFiles({ stateDir: path.join(dir, 'uploads') }) }), store);
    open.push(d);
    return d;
  }

  beforeAll(async () => {
    stack = await TestStack.start({ withS3: true, env: { RATE_LIMIT_REGISTER_PER_IP_PER_HOUR: '1000' } });
    dir = await mkdtemp(path.join(tmpdir(), 'umbra-front-door-'));
    [alice, bob, carol] = [await create(), await create(), await create()];
  });
  afterAll(async () => {
    for (const d of open) await d.umbra.close().catch(() => undefined);
    await stack?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('1:1 both ways: messages, a reply, a reaction and an edit arrive once each, already in the history', async () => {
    const conv = bob.umbra.account.id;
    const sent = [];
    for (const text of ['one', 'two', 'three']) sent.push(await alice.umbra.messages.send(conv, text));
    await waitFor(() => of(bob, 'message').length >= 3, 15_000, 'three messages at Bob');
    const atBob = of(bob, 'message');
    expect(atBob.map((e) => e.message.content.text)).toEqual(['one', 'two', 'three']);
    expect(atBob.every((e) => e.conv === alice.umbra.account.id && !e.message.sync)).toBe(true);
    expect((await bob.umbra.messages.history(alice.umbra.account.id)).map((e) => e.content.text)).toEqual(['one', 'two', 'three']);

    const reply = await bob.umbra.messages.reply(alice.umbra.account.id, sent[1]!.id, 're: two');
    await bob.umbra.messages.react(alice.umbra.account.id, sent[0]!.id, '👍');
    await alice.umbra.messages.edit(conv, sent[2]!.id, 'three (edited)');
    await waitFor(() => of(alice, 'message').length >= 1 && of(alice, 'update').length >= 1 && of(bob, 'update').length >= 1, 15_000, 'reply, reaction and edit');

    const got = of(alice, 'message')[0]!;
    expect(got.message.content).toMatchObject({ id: reply.id, text: 're: two', reply: { id: sent[1]!.id, from: alice.umbra.account.id, text: 'two' } });
    expect(of(alice, 'update')[0]).toMatchObject({ kind: 'react', target: sent[0]!.id, from: bob.umbra.account.id });
    expect(of(bob, 'update')[0]).toMatchObject({ kind: 'edit', target: sent[2]!.id });
    expect((await bob.umbra.messages.get(alice.umbra.account.id, sent[2]!.id))?.edited?.text).toBe('three (edited)');
    expect((await alice.umbra.messages.get(conv, sent[0]!.id))?.reactions?.[bob.umbra.account.id]?.emoji).toBe('👍');

    await bob.umbra.messages.markRead(alice.umbra.account.id, sent[0]!.id);
    await waitFor(() => of(alice, 'receipt').length >= 1, 15_000, 'the read receipt');
    expect(of(alice, 'receipt')).toEqual([{ type: 'receipt', kind: 'read', conv, from: conv, ids: [sent[0]!.id], at: expect.any(Number) }]);
    expect((await alice.umbra.messages.get(conv, sent[0]!.id))?.receipts?.[conv]?.read).toEqual(expect.any(Number));

    await Promise.all([alice.umbra.settle(), bob.umbra.settle()]);
    await new Promise((r) => setTimeout(r, 300));
    expect(of(alice, 'receipt')).toHaveLength(1);
    expectOnceEach(alice);
    expectOnceEach(bob);
    expect(of(bob, 'error')).toEqual([]);
  });

  it('a linked second device hears its account once: sync copies of a group reaction (one per member) give one update', async () => {
    const store = new MemoryStore();
    const adding: { added?: Promise<{ deviceId: number }> } = {};
    const linked = await Umbra.link({
      serverUrl: stack.origin,
      store,
      files: nodeFiles(),
      onQr: (code) => void (adding.added = alice.umbra.devices.link(code)),
      confirmAccount: (offer) => offer.accountIdText === alice.umbra.account.id,
      timeoutMs: 20_000,
    });
    const phone = record(linked, store);
    open.push(phone);
    expect((await adding.added)?.deviceId).toBe(phone.umbra.account.deviceId);
    expect(phone.umbra.account.id).toBe(alice.umbra.account.id);
    const devices = await alice.umbra.devices.list();
    expect(devices.devices.map((d) => d.deviceId).sort()).toEqual([alice.umbra.account.deviceId, phone.umbra.account.deviceId].sort());
    expect(devices.devices.find((d) => d.thisDevice)?.accountKeyHolder).toBe(true);

    const gid = await alice.umbra.groups.create([bob.umbra.account.id, carol.umbra.account.id]);
    expect(await alice.umbra.groups.members(gid)).toEqual([alice.umbra.account.id, bob.umbra.account.id, carol.umbra.account.id]);
    const hello = await alice.umbra.groups.send(gid, 'hello group');
    await waitFor(() => [bob, carol].every((d) => of(d, 'message').some((e) => e.conv === gid)), 15_000, 'the group message at Bob and Carol');
    expect(of(carol, 'message').filter((e) => e.conv === gid).map((e) => e.message.content.text)).toEqual(['hello group']);
    expect(await carol.umbra.groups.members(gid)).toHaveLength(3);

    const answer = await carol.umbra.messages.send(gid, 'hi from carol');
    await waitFor(() => [alice, bob, phone].every((d) => of(d, 'message').some((e) => e.message.content.id === answer.id)), 15_000, 'Carol in the group');

    await alice.umbra.messages.react(gid, answer.id, '🎉');
    await waitFor(() => of(phone, 'update').some((e) => e.target === answer.id) && of(carol, 'update').some((e) => e.target === answer.id), 15_000, 'the reaction');
    await Promise.all([phone.umbra.settle(), bob.umbra.settle(), carol.umbra.settle()]);
    await new Promise((r) => setTimeout(r, 500));
    // Alice's reaction went pairwise to Bob and Carol, so the phone got two sync copies of one Content.
    expect(of(phone, 'update').filter((e) => e.target === answer.id)).toHaveLength(1);
    // The phone has Alice's group message too (sender keys go to every device of every member, ours included).
    expect(of(phone, 'message').find((e) => e.message.content.id === hello.id)?.message.from).toBe(alice.umbra.account.id);
    for (const d of [alice, bob, carol, phone]) expectOnceEach(d);

    // Removal: the phone hears it was revoked; Alice's list is back to one device.
    await alice.umbra.devices.remove(phone.umbra.account.deviceId);
    await waitFor(() => of(phone, 'connection').some((e) => e.state === 'revoked'), 15_000, 'the revocation');
    expect((await alice.umbra.devices.list()).devices).toHaveLength(1);
  });

  it('a file through the Node path: sent, received as a message, downloaded and verified byte for byte', async () => {
    const bytes = randomBytes(300 * 1024 + 17);
    const file = path.join(dir, 'photo.bin');
    await writeFile(file, bytes);
    const progress: number[] = [];
    const sent = await alice.umbra.files.send(bob.umbra.account.id, file, { contentType: 'image/x-test', onProgress: (p) => void progress.push(p.done) });
    expect(sent.pointer).toMatchObject({ size: bytes.length, ct: 'image/x-test', name: 'photo.bin' });
    expect(progress.at(-1)).toBe(sent.pointer.esize);
    await waitFor(() => of(bob, 'message').some((e) => e.message.content.id === sent.id), 15_000, 'the file message');
    const received = of(bob, 'message').find((e) => e.message.content.id === sent.id)!;
    expect(bob.umbra.files.pointerOf(received.message)).toEqual(sent.pointer);
    const dest = path.join(dir, 'downloaded.bin');
    await bob.umbra.files.download(received.message, dest);
    expect(sha256(await readFile(dest))).toBe(sha256(bytes));
    // A text message is no file.
    await expect(async () => bob.umbra.files.download({ v: 1, id: 'x', ts: 1, k: 'text', text: 'no' }, dest)).rejects.toMatchObject({ code: 'NOT_A_FILE' });
  });

  it('the browser transport (webFiles: fetch and WebCrypto) sends a Blob the Node transport downloads, and back', async () => {
    const store = new MemoryStore();
    const web = await Umbra.create({ serverUrl: stack.origin, store, files: webFiles() });
    try {
      const bytes = randomBytes(64 * 1024 + 5);
      const sent = await web.files.send(bob.umbra.account.id, new Blob([bytes], { type: 'application/x-test' }), { name: 'from-web.bin' });
      await waitFor(() => of(bob, 'message').some((e) => e.message.content.id === sent.id), 15_000, 'the web file at Bob');
      const dest = path.join(dir, 'from-web.bin');
      await bob.umbra.files.download(of(bob, 'message').find((e) => e.message.content.id === sent.id)!.message, dest);
      expect(sha256(await readFile(dest))).toBe(sha256(bytes));

      const arriving = web.next('message', (e) => e.message.content.k === 'att', 15_000);
      const back = await bob.umbra.files.send(web.account.id, dest);
      const got = await arriving;
      expect(got.message.content.id).toBe(back.id);
      const blob = await web.files.download(got.message);
      expect(sha256(new Uint8Array(await blob.arrayBuffer()))).toBe(sha256(bytes));
    } finally {
      await web.close();
    }
  });

  it('recall: Bob is offline, Alice deletes her message, Bob reopens his store and never receives it', async () => {
    const bobStore = bob.store;
    await bob.umbra.close();
    const gone = await alice.umbra.messages.send(bob.umbra.account.id, 'you never see this');
    const { recalled } = await alice.umbra.messages.delete(bob.umbra.account.id, gone.id);
    expect(recalled).toBeGreaterThanOrEqual(1);
    expect(await alice.umbra.messages.get(bob.umbra.account.id, gone.id)).toBeUndefined();
    const kept = await alice.umbra.messages.send(bob.umbra.account.id, 'but this one');

    const reopened = await Umbra.open({ serverUrl: stack.origin, store: bobStore, files: nodeFiles(), connect: false });
    bob = record(reopened, bobStore);
    open.push(bob);
    await bob.umbra.connect();
    await waitFor(() => of(bob, 'message').some((e) => e.message.content.id === kept.id), 15_000, 'the message sent after the recall');
    await bob.umbra.settle();
    expect(of(bob, 'connection')[0]).toEqual({ type: 'connection', state: 'connected' });
    expect(of(bob, 'message').some((e) => e.message.content.id === gone.id)).toBe(false);
    const history = await bob.umbra.messages.history(alice.umbra.account.id);
    expect(history.map((e) => e.content.text)).toContain('but this one');
    expect(history.map((e) => e.content.text)).not.toContain('you never see this');
    expectOnceEach(bob);
  });

  it('timers, typing and vanishing reach the other side as events', async () => {
    const conv = bob.umbra.account.id;
    await alice.umbra.messages.setTimer(conv, { t: 2, m: 'send' });
    await waitFor(() => of(bob, 'timer').some((e) => e.conv === alice.umbra.account.id), 15_000, 'the timer at Bob');
    expect(of(bob, 'timer').filter((e) => e.conv === alice.umbra.account.id)).toEqual([{ type: 'timer', conv: alice.umbra.account.id, timer: { t: 2, m: 'send' } }]);
    expect(await bob.umbra.messages.timer(alice.umbra.account.id)).toEqual({ t: 2, m: 'send' });

    const brief = await alice.umbra.messages.send(conv, 'vanishes in 2 s');
    await waitFor(async () => (await bob.umbra.messages.get(alice.umbra.account.id, brief.id)) !== undefined, 15_000, 'the vanishing message');
    await waitFor(async () => (await bob.umbra.messages.get(alice.umbra.account.id, brief.id)) === undefined && (await alice.umbra.messages.get(conv, brief.id)) === undefined, 10_000, 'it vanished');
    // Each side hears it once, when its own timer deleted the message.
    const vanished = (d: Device) => of(d, 'expired').flatMap((e) => e.messages.filter((m) => m.id === brief.id).map((m) => ({ by: e.by, conv: m.conv })));
    await waitFor(() => vanished(alice).length > 0 && vanished(bob).length > 0, 10_000, 'the expired events');
    expect(vanished(alice)).toEqual([{ by: 'timer', conv }]);
    expect(vanished(bob)).toEqual([{ by: 'timer', conv: alice.umbra.account.id }]);
    await alice.umbra.messages.setTimer(conv, null);

    const typing = bob.umbra.next('typing', (e) => e.from === alice.umbra.account.id, 10_000);
    await alice.umbra.messages.typing(conv, 'started');
    expect(await typing).toEqual({ type: 'typing', from: alice.umbra.account.id, device: alice.umbra.account.deviceId, state: 'started', conv: alice.umbra.account.id });
  });

  it('errors are typed: local refusals are UmbraError with a code, server answers UmbraApiError', async () => {
    await expect(Umbra.open({ serverUrl: stack.origin, store: new MemoryStore() })).rejects.toMatchObject({ name: 'UmbraError', code: 'NO_IDENTITY' });
    await expect(Umbra.create({ serverUrl: stack.origin, store: alice.store })).rejects.toMatchObject({ code: 'IDENTITY_EXISTS' });
    await expect(Umbra.create({ serverUrl: stack.origin, store: new MemoryStore(), handle: 'no spaces allowed' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(alice.umbra.messages.edit(bob.umbra.account.id, 'AAAAAAAAAAAAAAAAAAAAAA', 'x')).rejects.toMatchObject({ code: 'UNKNOWN_MESSAGE' });
    const theirs = of(alice, 'message')[0]!;
    await expect(alice.umbra.messages.edit(theirs.conv, theirs.message.content.id, 'mine now')).rejects.toMatchObject({ code: 'NOT_YOUR_MESSAGE' });
    const gid = (await bob.umbra.groups.list())[0]!.gid;
    await expect(bob.umbra.groups.add(gid, carol.umbra.account.id)).rejects.toMatchObject({ code: 'NOT_GROUP_ADMIN' });
    await expect(bob.umbra.groups.send('not-a-group', 'x')).rejects.toBeInstanceOf(UmbraError);
    await expect(bob.umbra.devices.remove(12345)).rejects.toMatchObject({ code: 'UNKNOWN_DEVICE' });

    const handle = `fd_${randomBytes(5).toString('hex')}`;
    expect(await alice.umbra.account.setHandle(`@${handle}`)).toBe(handle);
    expect(await alice.umbra.account.handle()).toBe(handle);
    expect(await bob.umbra.account.resolve(`@${handle}`)).toBe(alice.umbra.account.id);
    const taken = await bob.umbra.account.setHandle(handle).catch((e: unknown) => e);
    expect(taken).toBeInstanceOf(UmbraApiError);
    expect(taken).toMatchObject({ code: 'HANDLE_TAKEN' });
    await alice.umbra.account.clearHandle();

    const store = new MemoryStore();
    const plain = await Umbra.create({ serverUrl: stack.origin, store });
    await expect(async () => plain.files.download(of(bob, 'message')[0]!.message, undefined as never)).rejects.toMatchObject({ code: 'NO_FILE_TRANSPORT' });
    await plain.close();
    await expect(plain.messages.send(bob.umbra.account.id, 'after close')).rejects.toMatchObject({ code: 'CLOSED' });
  });

  it('safety numbers match on both sides and their QR codes verify each other', async () => {
    const a = await alice.umbra.devices.safetyNumber(carol.umbra.account.id);
    const c = await carol.umbra.devices.safetyNumber(alice.umbra.account.id);
    expect(a.digits).toMatch(/^\d{60}$/);
    expect(a.digits).toBe(c.digits);
    expect(await alice.umbra.devices.verifySafetyQr(carol.umbra.account.id, c.qr)).toBe(true);
    expect(await alice.umbra.devices.verifySafetyQr(bob.umbra.account.id, c.qr)).toBe(false);
  });

  it('wipe deletes everything the device stored', async () => {
    expect(await Umbra.exists(carol.store)).toBe(true);
    await carol.umbra.wipe();
    expect(await carol.store.keys('')).toEqual([]);
    expect(await Umbra.exists(carol.store)).toBe(false);
  });

  it('the complete example in docs/sdk.md runs as written', async () => {
    const doc = await readFile(path.join(process.cwd(), 'docs/sdk.md'), 'utf8');
    const block = /<!-- sdk-example -->\s*```ts\n([\s\S]*?)```/.exec(doc)?.[1];
    expect(block).toBeDefined();
    // Written verbatim into the (git-ignored) tmp/ of the repository, where Jest maps @umbra/sdk to the source.
    const generated = path.join(process.cwd(), 'tmp', `sdk-example-${randomBytes(4).toString('hex')}.ts`);
    await mkdir(path.dirname(generated), { recursive: true });
    await writeFile(generated, block!);
    try {
      const example = (await import(generated)) as { main(serverUrl: string): Promise<string[]> };
      expect(await example.main(stack.origin)).toEqual(['Bob got "hello Bob"', 'Alice got "hi Alice"', 'Bob got "hello group"']);
    } finally {
      await rm(generated, { force: true });
    }
    expect(existsSync(generated)).toBe(false);
  });
});

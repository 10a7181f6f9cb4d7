import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { sendFile } from '@umbra/sdk/node';
import type { DataSource } from 'typeorm';
import { DataSource as DataSourceToken } from 'typeorm';
import { Channels, ExpiryKeysRepository, ManualClock, Metrics, QueueRegistry, Queues, type GatewayMessage } from '@umbra/server';
import type { ExpiryReceipt } from '@umbra/protocol';
import { dumpRedis } from './support/dumps';
import { SweepService } from '../services/expiry-worker/src/sweep/sweep.service';
import { RelayProcessor } from '../services/message-relay/src/relay/relay.processor';
import { TEST_REDIS_URL, TestStack, waitFor } from './support/harness';
import { linkDevice, newAccount, type E2eeDevice } from './support/devices';

const MINUTE = 60_000;

describe('vanishing messages (server-enforced, PROTOCOL.md §8)', () => {
  const clock = new ManualClock(Date.now());
  const now = () => clock.now();
  let stack: TestStack;
  let ds: DataSource;
  let redis: Redis;
  const devices: E2eeDevice[] = [];

  const worker = (i = 0) => stack.of('expiry-worker')[i]!.svc.app;
  const expiryQueue = () => worker().get(QueueRegistry).queue(Queues.expiry);
  const rowsOf = async (cmid: string) => {
    const b = Buffer.from(cmid, 'base64url');
    // Expiry receipts (type 5, in the sender's own queue) reuse the clientMessageId; they are not copies of the message.
    const [e] = (await ds.query(`SELECT count(*)::int AS n FROM envelopes WHERE client_message_id = $1 AND type <> 5`, [b])) as { n: number }[];
    const [m] = (await ds.query(`SELECT count(*)::int AS n FROM message_sends WHERE client_message_id = $1`, [b])) as { n: number }[];
    return e!.n + m!.n;
  };
  /** Runs every expiry job now. One that is not due by `clock` goes back to delayed, as in production. */
  const fire = async () => {
    await expiryQueue().promoteJobs();
    await waitFor(async () => {
      const c = await expiryQueue().getJobCounts('waiting', 'active', 'prioritized');
      if ((c.waiting ?? 0) + (c.active ?? 0) + (c.prioritized ?? 0) > 0) return false;
      return (await expiryQueue().getDelayed()).every((j) => (j.data as { dueAt: number }).dueAt > clock.now());
    }, 15_000, 'expiry jobs to run');
  };

  beforeAll(async () => {
    stack = await TestStack.start({
      instances: { 'expiry-worker': 2 },
      env: { SWEEP_INTERVAL_MS: '3600000', EXPIRY_KEY_WINDOW_S: '60', ATTACHMENT_REAP_INTERVAL_MS: '3600000', RATE_LIMIT_REGISTER_PER_IP_PER_HOUR: '1000' },
      overrides: { clock },
      withS3: true,
    });
    ds = worker().get(DataSourceToken);
    redis = new Redis(TEST_REDIS_URL);
  });
  afterAll(async () => {
    for (const d of devices) await d.client.close();
    redis.disconnect();
    await stack.stop();
  });

  it('deletes every trace when the timer fires: Postgres rows, BullMQ job, Redis, the shredding key, and the SDK history on every device including one that was offline', async () => {
    const alice = await newAccount(stack.origin, { now });
    const bob1 = await newAccount(stack.origin, { now });
    const bob2 = await linkDevice(stack.origin, bob1, { now });
    devices.push(alice, bob1, bob2);
    const bobId = bob1.client.identity.accountIdText;

    await alice.messenger.setTimer(bobId, { t: 60, m: 'send' });
    await waitFor(async () => (await bob1.messenger.timer(alice.client.identity.accountIdText)) !== null, 10_000, 'bob adopts the timer');
    expect(await bob1.messenger.timer(alice.client.identity.accountIdText)).toEqual({ t: 60, m: 'send' });

    await bob2.client.close(); // offline from here on
    const marker = `vanishing-${Date.now()}`;
    const cmid = (await alice.messenger.sendText(bobId, marker)).clientMessageId;
    await waitFor(() => bob1.inbox.some((m) => m.content.text === marker), 10_000, 'bob1 gets the message');
    const received = bob1.inbox.find((m) => m.content.text === marker)!;
    expect(received.content.exp).toEqual({ t: 60, m: 'send' });
    expect(received.deleteAt).toBe(received.content.ts + 60_000);
    expect((await bob1.messenger.history.list(alice.client.identity.accountIdText)).map((e) => e.content.text)).toContain(marker);
    await bob1.client.settle();

    // bob2's copy waits in Postgres, sealed under the key of its expiry window, with a delayed job.
    const [row] = (await ds.query(`SELECT key_window AS w, content, expires_at AS "expiresAt" FROM envelopes WHERE client_message_id = $1`, [Buffer.from(cmid, 'base64url')])) as { w: string; content: Buffer; expiresAt: string }[];
    expect(row).toBeDefined();
    expect(row!.content.includes(Buffer.from(marker))).toBe(false);
    expect(await expiryQueue().getDelayedCount()).toBeGreaterThanOrEqual(1);
    const keys = worker().get(ExpiryKeysRepository);
    expect(await keys.get(Number(row!.w))).toBeDefined();

    clock.advance(MINUTE + 1);
    await fire();
    expect(await rowsOf(cmid)).toBe(0);
    // No row of any table mentions the message (bytea columns render as \x<hex> in a row's text).
    const tables = (await ds.query(`SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`)) as { t: string }[];
    expect(tables.length).toBeGreaterThan(5);
    const cmidHex = Buffer.from(cmid, 'base64url').toString('hex');
    for (const { t } of tables) {
      const [hit] = (await ds.query(`SELECT count(*)::int AS n FROM "${t}" x WHERE x::text LIKE $1 OR x::text LIKE $2`, [`%${cmidHex}%`, `%${cmid}%`])) as { n: number }[];
      expect(`${t}: ${hit!.n}`).toBe(`${t}: 0`);
    }
    expect(await expiryQueue().getJobCounts('delayed', 'waiting', 'active', 'failed', 'completed')).toEqual({ delayed: 0, waiting: 0, active: 0, failed: 0, completed: 0 });

    // The window's key is destroyed by the next sweep once the window has ended.
    clock.set(Number(row!.w) * MINUTE);
    await worker().get(SweepService).sweep();
    expect(await keys.get(Number(row!.w))).toBeUndefined();

    // Nothing in Redis names the message.
    const dump = await dumpRedis(redis, `${stack.env.REDIS_PREFIX}:*`);
    expect(dump.length).toBeGreaterThan(0);
    expect(dump.includes(cmid)).toBe(false);
    expect(dump.includes(Buffer.from(cmid, 'base64url').toString('hex'))).toBe(false);

    // Local copies: the SDK deletes them on its timer, on every device.
    await alice.messenger.history.purgeExpired();
    await bob1.messenger.history.purgeExpired();
    for (const d of [alice, bob1]) {
      const all = await d.store.keys('history/');
      for (const k of all) expect((await d.store.get(k))!.includes(marker)).toBe(false);
    }

    // bob2 comes back: the message is gone from the server, and its SDK never shows it.
    const bob2again = await reconnect(bob2, stack.origin, now);
    devices.push(bob2again);
    await waitFor(async () => (await bob2again.messenger.timer(alice.client.identity.accountIdText)) !== null, 10_000, 'bob2 drains the timer change');
    await bob2again.client.settle();
    expect(bob2again.inbox.some((m) => m.content.text === marker)).toBe(false);
    for (const k of await bob2again.store.keys('history/')) expect((await bob2again.store.get(k))!.includes(marker)).toBe(false);
  });

  it('never delivers an expired message, even before its job or the sweep has run', async () => {
    const alice = await newAccount(stack.origin, { now });
    const bob = await newAccount(stack.origin, { now });
    devices.push(alice, bob);
    await bob.client.close();
    const cmid = (await alice.messenger.sendText(bob.client.identity.accountIdText, 'gone before you look', { exp: { t: 30, m: 'send' } })).clientMessageId;
    clock.advance(30_001);
    expect(await rowsOf(cmid)).toBeGreaterThan(0); // still stored: nothing has run yet
    expect((await bob.client.fetchMessages()).messages).toEqual([]);
    const back = await reconnect(bob, stack.origin, now);
    devices.push(back);
    await new Promise((r) => setTimeout(r, 300));
    expect(back.inbox).toEqual([]);
    await fire();
    expect(await rowsOf(cmid)).toBe(0);
  });

  it('a job that runs before its time (a worker clock ahead of the database) runs again when due, rather than leaving the message to the sweep', async () => {
    const alice = await newAccount(stack.origin, { now });
    const bob = await newAccount(stack.origin, { now });
    devices.push(alice, bob);
    await bob.client.close();
    const cmid = (await alice.messenger.sendText(bob.client.identity.accountIdText, 'not yet', { exp: { t: 60, m: 'send' } })).clientMessageId;
    const ours = async () => (await expiryQueue().getDelayed()).find((j) => (j.data as { c: string }).c === cmid);
    const job = await ours();
    expect(job).toBeDefined();
    clock.advance(30_000); // half way
    await fire(); // runs every job at once, this one 30 s early
    expect(await rowsOf(cmid)).toBe(2);
    const again = await ours();
    expect(again).toBeDefined();
    expect(again!.timestamp + again!.delay).toBeGreaterThan(Date.now() + 25_000);
    clock.advance(30_001);
    await fire();
    expect(await rowsOf(cmid)).toBe(0);
    expect(await ours()).toBeUndefined();
  });

  it('a device that was offline never shows a message whose timer passed on its own clock, even if the server still delivers it', async () => {
    const alice = await newAccount(stack.origin, { now });
    let bobNow = clock.now();
    const bob = await newAccount(stack.origin, { now: () => bobNow });
    devices.push(alice, bob);
    await bob.client.close();
    await alice.messenger.sendText(bob.client.identity.accountIdText, 'inner timer wins', { exp: { t: 10, m: 'send' } });
    // The server's clock says 5 s have passed; the device's says 11 s (the inner timer is authoritative).
    clock.advance(5_000);
    bobNow += 11_000;
    expect((await bob.client.fetchMessages()).messages).toHaveLength(1);
    const back = await reconnect(bob, stack.origin, () => bobNow);
    devices.push(back);
    await waitFor(async () => (await back.client.fetchMessages()).messages.length === 0, 10_000, 'the envelope to be acknowledged');
    expect(back.inbox).toEqual([]);
    expect(back.errors).toEqual([]);
    expect(await back.messenger.history.list(alice.client.identity.accountIdText)).toEqual([]);
  });

  it('tells the sender when a message expired before any device of the recipient received it — once, with two expiry-workers racing jobs and sweeps', async () => {
    const alice = await newAccount(stack.origin, { now });
    const bob = await newAccount(stack.origin, { now });
    const carol = await newAccount(stack.origin, { now });
    devices.push(alice, bob, carol);
    const receipts: ExpiryReceipt[] = [];
    alice.messenger.on('expiryReceipt', (r) => receipts.push(r));
    await bob.client.close();
    const sent: string[] = [];
    for (let i = 0; i < 12; i++) {
      sent.push((await alice.messenger.sendText(bob.client.identity.accountIdText, `unseen ${i}`, { exp: { t: 20, m: 'send' } })).clientMessageId);
    }
    // Carol receives hers: no receipt for her.
    const seen = (await alice.messenger.sendText(carol.client.identity.accountIdText, 'seen', { exp: { t: 20, m: 'send' } })).clientMessageId;
    await waitFor(() => carol.inbox.length === 1, 10_000, 'carol receives');
    await carol.client.settle();
    await waitFor(async () => (await rowsOf(seen)) === 1, 10_000, "carol's ack");

    const receiptsCounted = async () => {
      const metrics = await Promise.all([0, 1].map((i) => worker(i).get(Metrics).registry.getSingleMetricAsString('umbra_expiry_receipts_total')));
      return metrics.map((m) => Number(/umbra_expiry_receipts_total\{[^}]*\} (\d+)/.exec(m)?.[1] ?? 0)).reduce((a, b) => a + b, 0);
    };
    const countedBefore = await receiptsCounted();
    clock.advance(20_001);
    const failuresBefore = await expiryQueue().getFailedCount();
    // Jobs on both workers and both sweeps at once.
    await Promise.all([fire(), worker(0).get(SweepService).sweep(), worker(1).get(SweepService).sweep()]);
    // Pushed live when the publish reaches alice's gateway; otherwise from her queue at the next
    // delivery check (DELIVERY_CHECK_INTERVAL_MS, 15 s): either way exactly once. 60 s: on a loaded
    // machine one check can pass before the rows are there.
    await waitFor(() => receipts.length >= 12, 60_000, 'twelve receipts');
    await new Promise((r) => setTimeout(r, 300));
    expect(receipts).toHaveLength(12);
    expect(new Set(receipts.map((r) => r.clientMessageId))).toEqual(new Set(sent));
    for (const r of receipts) expect(r.accountIds).toEqual([bob.client.identity.accountIdText]);
    expect(await expiryQueue().getFailedCount()).toBe(failuresBefore);
    for (const c of [...sent, seen]) expect(await rowsOf(c)).toBe(0);
    expect((await receiptsCounted()) - countedBefore).toBe(12);
  }, 120_000);

  it('the sweep alone deletes everything after Redis lost every job', async () => {
    const alice = await newAccount(stack.origin, { now });
    const bob = await newAccount(stack.origin, { now });
    devices.push(alice, bob);
    await bob.client.close();
    const cmid = (await alice.messenger.sendText(bob.client.identity.accountIdText, 'outlives redis', { exp: { t: 5, m: 'send' } })).clientMessageId;
    expect(await expiryQueue().getDelayedCount()).toBeGreaterThanOrEqual(1);
    // Redis flushed: every BullMQ key of this deployment is gone.
    const bull = await redis.keys(`${stack.env.REDIS_PREFIX}:bull:*`);
    if (bull.length) await redis.del(...bull);
    expect(await expiryQueue().getDelayedCount()).toBe(0);
    clock.advance(5_001);
    const swept = await worker(1).get(SweepService).sweep();
    expect(swept.messages).toBeGreaterThanOrEqual(1);
    expect(await rowsOf(cmid)).toBe(0);
  });

  it('read mode: the timer starts at display on the device, and a read report reschedules the copy the server still holds', async () => {
    const alice = await newAccount(stack.origin, { now });
    const bob = await newAccount(stack.origin, { now });
    devices.push(alice, bob);
    const bobId = bob.client.identity.accountIdText;
    await alice.messenger.setTimer(bobId, { t: 30, m: 'read' });
    await alice.messenger.sendText(bobId, 'read me');
    await waitFor(() => bob.inbox.some((m) => m.content.text === 'read me'), 10_000, 'delivery');
    const msg = bob.inbox.find((m) => m.content.text === 'read me')!;
    const conv = alice.client.identity.accountIdText;
    expect(msg.deleteAt).toBe(msg.content.ts + 30_000 + 2_592_000_000);
    clock.advance(3600_000); // unread for an hour: still there
    await bob.messenger.history.purgeExpired();
    expect((await bob.messenger.history.list(conv)).map((e) => e.content.text)).toEqual(['read me']);
    const read = await bob.messenger.markRead(conv, msg.content.id);
    expect(read!.deleteAt).toBe(clock.now() + 30_000);
    clock.advance(30_001);
    await bob.messenger.history.purgeExpired();
    expect(await bob.messenger.history.list(conv)).toEqual([]);

    // Server side: a REST client that has not acked yet reports the read; the copy vanishes 30 s later.
    const carol = await newAccount(stack.origin, { now });
    devices.push(carol);
    await carol.client.close();
    const cmid = (await alice.messenger.sendText(carol.client.identity.accountIdText, 'read on REST', { exp: { t: 30, m: 'read' } })).clientMessageId;
    const page = await carol.client.fetchMessages();
    const env = page.messages.find((m) => m.clientMessageId === cmid)!;
    expect(env.readTtlS).toBe(30);
    expect(await carol.client.api('POST', '/v1/messages/read', { ids: [env.id] })).toEqual({ lowered: 1 });
    expect(await carol.client.api('POST', '/v1/messages/read', { ids: [env.id] })).toEqual({ lowered: 0 });
    clock.advance(30_001);
    expect((await carol.client.fetchMessages()).messages.some((m) => m.id === env.id)).toBe(false);
    await fire();
    const [left] = (await ds.query(`SELECT count(*)::int AS n FROM envelopes WHERE seq = $1`, [env.id])) as { n: number }[];
    expect(left!.n).toBe(0);
    // The send record stays until the message's own upper bound; then the sweep removes it.
    clock.advance(2_592_000_000);
    await worker().get(SweepService).sweep();
    expect(await rowsOf(cmid)).toBe(0);
  });

  it('deletes the file a vanishing message carries — row and S3 object — but never a forwarded file someone else uploaded', async () => {
    const alice = await newAccount(stack.origin, { now });
    const bob = await newAccount(stack.origin, { now });
    devices.push(alice, bob);
    const bobId = bob.client.identity.accountIdText;
    await bob.client.close();
    const dir = mkdtempSync(path.join(tmpdir(), 'umbra-vanish-file-'));
    const file = path.join(dir, 'secret.bin');
    const marker = `file-marker-${Date.now()}`;
    writeFileSync(file, Buffer.concat([Buffer.from(marker), Buffer.alloc(70_000, 1)]));
    await alice.messenger.setTimer(bobId, { t: 60, m: 'send' });
    const { pointer, result } = await sendFile(alice.messenger, bobId, file, { now });
    // Alice also forwards (same pointer, vanishing too) a file Carol uploaded: not Alice's to delete.
    const carol = await newAccount(stack.origin, { now });
    devices.push(carol);
    const carolFile = await sendFile(carol.messenger, alice.client.identity.accountIdText, file, { now, timer: null });
    const forwarded = await alice.messenger.sendUserContent(bobId, { v: 1, id: Buffer.alloc(16, 9).toString('base64url'), ts: now(), k: 'att', ...carolFile.pointer });

    const attachmentRows = async (oid: string) => {
      const [r] = (await ds.query(`SELECT count(*)::int AS n FROM attachments WHERE id = $1`, [Buffer.from(oid, 'base64url')])) as { n: number }[];
      return r!.n;
    };
    const s3Files = (dir: string): string[] => readdirSync(dir).flatMap((f) => (statSync(path.join(dir, f)).isDirectory() ? s3Files(path.join(dir, f)) : [path.join(dir, f)]));
    const s3Dir = `/tmp/umbra-test-s3-${stack.env.REDIS_PREFIX}`;
    const objectsNamed = (oid: string) => s3Files(s3Dir).filter((f) => f.includes(oid));
    expect(await attachmentRows(pointer.oid)).toBe(1);
    expect(objectsNamed(pointer.oid).length).toBeGreaterThan(0);
    for (const f of s3Files(s3Dir)) expect(readFileSync(f).includes(Buffer.from(marker))).toBe(false);

    clock.advance(MINUTE + 1);
    await fire();
    expect(await rowsOf(result.clientMessageId)).toBe(0);
    expect(await attachmentRows(pointer.oid)).toBe(0);
    expect(objectsNamed(pointer.oid)).toEqual([]);
    // Carol's file stays: the servers only delete what the vanished message's sender uploaded.
    expect(forwarded.duplicate).toBe(false);
    expect(await attachmentRows(carolFile.pointer.oid)).toBe(1);
  });

  it('a group timer set by a member is adopted by the others; group messages carry it inside and in the envelope', async () => {
    const alice = await newAccount(stack.origin, { now });
    const bob = await newAccount(stack.origin, { now });
    const mallory = await newAccount(stack.origin, { now });
    devices.push(alice, bob, mallory);
    const gid = await alice.messenger.createGroup([bob.client.identity.accountIdText]);
    await waitFor(async () => !!(await bob.messenger.group(gid)), 10_000, 'bob knows the group');
    await bob.messenger.setGroupTimer(gid, { t: 45, m: 'send' });
    await waitFor(async () => (await alice.messenger.timer(gid)) !== null, 10_000, 'alice adopts the group timer');
    expect(await alice.messenger.timer(gid)).toEqual({ t: 45, m: 'send' });
    // Someone outside the group cannot change it.
    await mallory.messenger.sendContent(alice.client.identity.accountIdText, { v: 1, id: Buffer.alloc(16, 3).toString('base64url'), ts: now(), k: 'exp_set', gid, t: 1, m: 'send' });
    await new Promise((r) => setTimeout(r, 500));
    expect(await alice.messenger.timer(gid)).toEqual({ t: 45, m: 'send' });

    const sent = await alice.messenger.sendGroupText(gid, 'group secret');
    await waitFor(() => bob.inbox.some((m) => m.content.text === 'group secret'), 10_000, 'group message');
    const got = bob.inbox.find((m) => m.content.text === 'group secret')!;
    expect(got.content.exp).toEqual({ t: 45, m: 'send' });
    expect(got.deleteAt).toBe(got.content.ts + 45_000);
    const [row] = (await ds.query(`SELECT max(expires_at) AS e FROM message_sends WHERE client_message_id = $1`, [Buffer.from(sent.clientMessageId, 'base64url')])) as { e: string }[];
    expect(Number(row!.e)).toBe(got.content.ts + 45_000);
  });

  it('rejects a send whose expiry has already passed, and bad read reports, with stable codes', async () => {
    const alice = await newAccount(stack.origin, { now });
    devices.push(alice);
    const status = async (path: string, body: unknown) => {
      const res = await fetch(`${stack.origin}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${await alice.client.getToken()}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: res.status, code: ((await res.json()) as { error?: { code: string } }).error?.code };
    };
    const recipient = { accountId: alice.client.identity.accountIdText, deviceId: 1, type: 2, content: 'AAAA' };
    expect(await status('/v1/messages', { clientMessageId: Buffer.alloc(16, 7).toString('base64url'), recipients: [recipient], expiresAt: clock.now() - 1 })).toEqual({ status: 400, code: 'ALREADY_EXPIRED' });
    expect(await status('/v1/messages', { clientMessageId: Buffer.alloc(16, 7).toString('base64url'), recipients: [recipient], attachments: ['not an id'] })).toEqual({ status: 400, code: 'VALIDATION_FAILED' });
    expect(await status('/v1/messages/read', { ids: [] })).toEqual({ status: 400, code: 'VALIDATION_FAILED' });
    expect(await status('/v1/messages/read', { ids: ['0'] })).toEqual({ status: 400, code: 'VALIDATION_FAILED' });
    expect(await status('/v1/messages/read', { ids: ['99999999'] })).toEqual({ status: 200, code: undefined });
  });

  it('a relay never stores a vanishing send whose timer has passed: a late retry cannot bring an expired message back', async () => {
    const alice = await newAccount(stack.origin, { now });
    const bob = await newAccount(stack.origin, { now });
    devices.push(alice, bob);
    const hex = (d: E2eeDevice) => Buffer.from(d.client.identity.accountId).toString('hex');
    const gatewayId = `gw-late-${randomBytes(4).toString('hex')}`;
    const answers: GatewayMessage[] = [];
    const sub = new Redis(TEST_REDIS_URL);
    await sub.subscribe(Channels.deliver(stack.env.REDIS_PREFIX!, gatewayId));
    sub.on('message', (_c, raw: string) => answers.push(JSON.parse(raw) as GatewayMessage));
    const send = (requestId: string, expiresAt: number) => ({
      requestId,
      senderAccount: hex(alice),
      senderDevice: alice.client.identity.device.deviceId,
      clientMessageId: randomBytes(16).toString('base64url'),
      expiresAt,
      readTtlS: 0,
      recipients: [{ account: hex(bob), deviceId: bob.client.identity.device.deviceId, type: 2, content: randomBytes(40).toString('base64url') }],
    });
    const late = send('late', clock.now() - 1);
    const onTime = send('on-time', clock.now() + MINUTE);
    try {
      await stack.of('message-relay')[0]!.svc.app.get(RelayProcessor).relayBatch({ gatewayId, sends: [late, onTime] }, 'late-test');
      expect(await rowsOf(late.clientMessageId)).toBe(0);
      expect(await rowsOf(onTime.clientMessageId)).toBe(2);
      await waitFor(() => answers.some((m) => m.kind === 'stored'), 5000, 'the stored answers');
      const stored = answers.find((m) => m.kind === 'stored');
      expect(stored?.kind === 'stored' && stored.results.map((r) => [r.requestId, r.outcome.ok ? 'ok' : r.outcome.code])).toEqual([
        ['late', 'ALREADY_EXPIRED'],
        ['on-time', 'ok'],
      ]);
    } finally {
      sub.disconnect();
    }
  });
});

/** Reopens an offline device (same store, so the same identity and sessions) and connects it. */
async function reconnect(d: E2eeDevice, origin: string, now: () => number): Promise<E2eeDevice> {
  const { UmbraClient, Messenger } = await import('@umbra/sdk');
  const client = await UmbraClient.open({ serverUrl: origin, store: d.store, sendTimeoutMs: 10_000, now });
  const messenger = await Messenger.open(client, d.store, now);
  const again: E2eeDevice = { store: d.store, client, messenger, inbox: [], errors: [] };
  messenger.on('message', (m) => {
    again.inbox.push(m);
  });
  messenger.on('error', (err) => again.errors.push(err));
  await client.connect();
  return again;
}

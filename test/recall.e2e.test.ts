import { randomBytes } from 'node:crypto';
import { io, type Socket } from 'socket.io-client';
import { DataSource } from 'typeorm';
import { Redis } from 'ioredis';
import { encodeAccountId } from '@umbra/crypto';
import { ClientEvent, LIMITS, ServerEvent, WS_PATH, type DeliveredEnvelope, type RecalledEvent, type TypingEvent, type WsAck } from '@umbra/protocol';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MemoryStore, Messenger, UmbraClient, linkNewDevice, linkThisDevice, type ReceivedMessage } from '@umbra/sdk';
import { TestStack, TEST_DATABASE_URL, TEST_REDIS_URL, waitFor } from './support/harness';
import { ClientPool, randomContent, toDevice, waitReceived, type TestClient } from './support/clients';
import { runUmbra } from './support/umbra-cli';
import { EnvelopeExpiryRepository } from '@umbra/server';

interface PlanNode {
  'Relation Name'?: string;
  'Index Name'?: string;
  'Actual Loops'?: number;
  Plans?: PlanNode[];
}

/** The envelope partitions a plan actually scanned, and the index each scan used (none for a sequential scan). */
function scansOf(plan: PlanNode): { relation: string; index?: string }[] {
  const out: { relation: string; index?: string }[] = [];
  const walk = (n: PlanNode) => {
    if (n['Relation Name']?.startsWith('envelopes_p') && (n['Actual Loops'] ?? 0) > 0) out.push({ relation: n['Relation Name'], ...(n['Index Name'] ? { index: n['Index Name'] } : {}) });
    for (const c of n.Plans ?? []) walk(c);
  };
  walk(plan);
  return out;
}

/**
 * A DataSource stand-in that runs each statement under EXPLAIN ANALYZE in a rolled-back transaction,
 * then for real (as test/envelope-partitions.test.ts). The tables here are tiny, so the explained run
 * has sequential and bitmap scans off: a plain index scan shows which index can serve the statement.
 */
function explaining(ds: DataSource, plans: PlanNode[]): DataSource {
  const query = async (sql: string, params?: unknown[]) => {
    const runner = ds.createQueryRunner();
    await runner.connect();
    try {
      await runner.startTransaction();
      await runner.query('SET LOCAL enable_seqscan = off');
      await runner.query('SET LOCAL enable_bitmapscan = off');
      const [row] = (await runner.query(`EXPLAIN (ANALYZE, COSTS OFF, FORMAT JSON) ${sql}`, params)) as { 'QUERY PLAN': { Plan: PlanNode }[] }[];
      plans.push(row!['QUERY PLAN'][0]!.Plan);
    } finally {
      await runner.rollbackTransaction();
      await runner.release();
    }
    return ds.query(sql, params);
  };
  return { query } as unknown as DataSource;
}

const SEND_RATE = 5;

interface Answer {
  status: number;
  body: { recalled?: number; error?: { code: string } };
  retryAfter: string | null;
}

describe('recall before delivery and typing indicators (issue 16)', () => {
  let stack: TestStack;
  let db: DataSource;
  let redis: Redis;
  const pool = new ClientPool(() => stack.origin);
  const sockets: Socket[] = [];

  beforeAll(async () => {
    stack = await TestStack.start({
      instances: { gateway: 2, 'message-relay': 1 },
      env: { RATE_LIMIT_SEND_PER_DEVICE_PER_SECOND: String(SEND_RATE), RATE_LIMIT_REGISTER_PER_IP_PER_HOUR: '1000' },
    });
    db = new DataSource({ type: 'postgres', url: TEST_DATABASE_URL });
    await db.initialize();
    redis = new Redis(TEST_REDIS_URL);
  });

  afterAll(async () => {
    for (const s of sockets) s.disconnect();
    await pool.closeAll();
    await stack.stop();
    await db.destroy();
    redis.disconnect();
  });

  /** POST /v1/messages/recall; `accounts` are the recipient accounts named (test clients or account id text). */
  async function recall(t: TestClient, clientMessageId: string, accounts: (TestClient | string)[], extra: Record<string, unknown> = {}): Promise<Answer> {
    const accountIds = accounts.map((a) => (typeof a === 'string' ? a : a.client.identity.accountIdText));
    return post(t, { clientMessageId, accountIds, ...extra });
  }

  async function post(t: TestClient | null, body: unknown): Promise<Answer> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (t) headers.authorization = `Bearer ${await t.client.getToken()}`;
    const res = await fetch(`${stack.origin}/v1/messages/recall`, { method: 'POST', headers, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as Answer['body'], retryAfter: res.headers.get('retry-after') };
  }

  async function copies(clientMessageId: string): Promise<number> {
    const [row] = (await db.query('SELECT count(*)::int AS n FROM envelopes WHERE client_message_id = $1', [Buffer.from(clientMessageId, 'base64url')])) as { n: number }[];
    return row!.n;
  }

  async function sendRecords(clientMessageId: string): Promise<number> {
    const [row] = (await db.query('SELECT count(*)::int AS n FROM message_sends WHERE client_message_id = $1', [Buffer.from(clientMessageId, 'base64url')])) as { n: number }[];
    return row!.n;
  }

  /** A socket that records what it is pushed and never acknowledges it. */
  async function rawSocket(t: TestClient): Promise<{ socket: Socket; messages: DeliveredEnvelope[]; recalled: RecalledEvent[]; typing: TypingEvent[] }> {
    const socket: Socket = io(stack.origin, { path: WS_PATH, transports: ['websocket'], auth: { token: await t.client.getToken() }, reconnection: false });
    sockets.push(socket);
    const out = { socket, messages: [] as DeliveredEnvelope[], recalled: [] as RecalledEvent[], typing: [] as TypingEvent[] };
    socket.on(ServerEvent.Messages, (ev: { messages: DeliveredEnvelope[] }) => out.messages.push(...ev.messages));
    socket.on(ServerEvent.Recalled, (ev: RecalledEvent) => out.recalled.push(ev));
    socket.on(ServerEvent.Typing, (ev: TypingEvent) => out.typing.push(ev));
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('connect_error', reject);
    });
    return out;
  }

  function emit<T>(socket: Socket, event: string, payload: unknown): Promise<WsAck<T>> {
    return new Promise((resolve) => socket.emit(event, payload, (res: WsAck<T>) => resolve(res)));
  }

  it('a send recalled before the recipient connects never reaches it: no row in Postgres, nothing drained; the send record stays', async () => {
    const alice = await pool.registered();
    const bob = await pool.registered();
    await alice.client.connect();
    const kept = await alice.client.send({ recipients: [toDevice(bob)] });
    const gone = await alice.client.send({ recipients: [toDevice(bob)] });
    expect(await copies(gone.clientMessageId)).toBe(1);

    const answer = await recall(alice, gone.clientMessageId, [bob, alice]);
    expect(answer).toMatchObject({ status: 200, body: { recalled: 1 } });
    expect(await copies(gone.clientMessageId)).toBe(0);
    expect(await sendRecords(gone.clientMessageId)).toBe(1);
    // Again: nothing left to recall.
    expect((await recall(alice, gone.clientMessageId, [bob, alice])).body).toEqual({ recalled: 0 });

    // A retry of the recalled send stays a duplicate: it is not stored again.
    const retry = await alice.client.send({ clientMessageId: gone.clientMessageId, recipients: [toDevice(bob)] });
    expect(retry.duplicate).toBe(true);
    expect(await copies(gone.clientMessageId)).toBe(0);

    await bob.client.connect();
    await waitFor(() => bob.queueEmpty > 0, 5000, 'queue-empty');
    await waitReceived(bob, 1);
    await bob.client.settle();
    expect(bob.received.map((e) => e.clientMessageId)).toEqual([kept.clientMessageId]);
  });

  it('a send already delivered and acknowledged recalls nothing', async () => {
    const alice = await pool.registered();
    const bob = await pool.registered();
    await alice.client.connect();
    await bob.client.connect();
    const sent = await alice.client.send({ recipients: [toDevice(bob)] });
    await waitReceived(bob, 1);
    await bob.client.settle();
    await waitFor(async () => (await copies(sent.clientMessageId)) === 0, 5000, 'the ack to delete the row');
    expect(await recall(alice, sent.clientMessageId, [bob, alice])).toMatchObject({ status: 200, body: { recalled: 0 } });
  });

  it('nobody else can recall a send: another account naming the same clientMessageId deletes nothing', async () => {
    const alice = await pool.registered();
    const bob = await pool.registered();
    const mallory = await pool.registered();
    await alice.client.connect();
    await mallory.client.connect();
    const sent = await alice.client.send({ recipients: [toDevice(bob)] });
    // Mallory even has a send of her own under that clientMessageId, to the same recipient.
    const hers = await mallory.client.send({ clientMessageId: sent.clientMessageId, recipients: [toDevice(bob)] });
    expect(hers.duplicate).toBe(false);
    expect(await copies(sent.clientMessageId)).toBe(2);

    expect((await recall(mallory, sent.clientMessageId, [bob])).body).toEqual({ recalled: 1 });
    const [row] = (await db.query('SELECT sender_account FROM envelopes WHERE client_message_id = $1', [Buffer.from(sent.clientMessageId, 'base64url')])) as { sender_account: Buffer }[];
    expect(row!.sender_account.equals(Buffer.from(alice.client.identity.accountId))).toBe(true);
    expect((await recall(mallory, sent.clientMessageId, [bob, alice, mallory])).body).toEqual({ recalled: 0 });
    expect(await copies(sent.clientMessageId)).toBe(1);
    // The recipient cannot recall it either.
    expect((await recall(bob, sent.clientMessageId, [bob])).body).toEqual({ recalled: 0 });
    expect(await copies(sent.clientMessageId)).toBe(1);
  });

  it('only the named accounts lose their copies: an account not named keeps its copy, on every one of its devices', async () => {
    const alice = await pool.registered();
    const bob = await pool.registered();
    const carol = await pool.registered();
    await alice.client.connect();
    const sent = await alice.client.send({ recipients: [toDevice(bob), toDevice(carol)] });
    expect(await copies(sent.clientMessageId)).toBe(2);

    expect((await recall(alice, sent.clientMessageId, [bob, alice])).body).toEqual({ recalled: 1 });
    const left = (await db.query('SELECT recipient_account FROM envelopes WHERE client_message_id = $1', [Buffer.from(sent.clientMessageId, 'base64url')])) as { recipient_account: Buffer }[];
    expect(left.map((r) => r.recipient_account.toString('hex'))).toEqual([Buffer.from(carol.client.identity.accountId).toString('hex')]);
    // Carol gets it; naming her afterwards finds nothing (her device acknowledged it).
    await carol.client.connect();
    await waitReceived(carol, 1);
    await carol.client.settle();
    expect(carol.received.map((e) => e.clientMessageId)).toEqual([sent.clientMessageId]);
    await waitFor(async () => (await copies(sent.clientMessageId)) === 0, 5000, 'the ack');
    expect((await recall(alice, sent.clientMessageId, [carol])).body).toEqual({ recalled: 0 });
  });

  it('naming accounts that were not recipients recalls nothing of theirs, without an error', async () => {
    const alice = await pool.registered();
    const bob = await pool.registered();
    const dave = await pool.registered();
    const erin = await pool.registered();
    await alice.client.connect();
    await erin.client.connect();
    const sent = await alice.client.send({ recipients: [toDevice(bob)] });
    // Dave holds other copies: alice's other send, and erin's send under the same clientMessageId.
    const other = await alice.client.send({ recipients: [toDevice(dave)] });
    await erin.client.send({ clientMessageId: sent.clientMessageId, recipients: [toDevice(dave)] });
    const daveRows = async () =>
      ((await db.query('SELECT count(*)::int AS n FROM envelopes WHERE recipient_account = $1', [Buffer.from(dave.client.identity.accountId)])) as { n: number }[])[0]!.n;
    expect(await daveRows()).toBe(2);

    const unregistered = encodeAccountId(randomBytes(32));
    expect(await recall(alice, sent.clientMessageId, [dave, unregistered])).toMatchObject({ status: 200, body: { recalled: 0 } });
    expect(await daveRows()).toBe(2);
    expect(await copies(sent.clientMessageId)).toBe(2);
    expect(await copies(other.clientMessageId)).toBe(1);
    // Named with bob, only alice's copy to bob goes.
    expect((await recall(alice, sent.clientMessageId, [dave, bob, bob])).body).toEqual({ recalled: 1 });
    expect(await daveRows()).toBe(2);
  });

  it('the recall statement reads only the named accounts\' partitions and no index on the sender key', async () => {
    const alice = await pool.registered();
    const bob = await pool.registered();
    const carol = await pool.registered();
    const dave = await pool.registered();
    await alice.client.connect();
    const sent = await alice.client.send({ recipients: [toDevice(bob), toDevice(carol), toDevice(dave)] });
    const partitionsOf = async (accounts: TestClient[]) =>
      new Set(
        ((await db.query('SELECT DISTINCT tableoid::regclass::text AS p FROM envelopes WHERE recipient_account = ANY($1::bytea[])', [
          accounts.map((t) => Buffer.from(t.client.identity.accountId)),
        ])) as { p: string }[]).map((r) => r.p),
      );
    const [all] = (await db.query(`SELECT count(*)::int AS n FROM pg_inherits WHERE inhparent = 'envelopes'::regclass`)) as { n: number }[];
    const named = await partitionsOf([bob, carol]);
    expect(named.size).toBeGreaterThan(0);
    expect(named.size).toBeLessThan(all!.n);

    const plans: PlanNode[] = [];
    const repo = new EnvelopeExpiryRepository(explaining(db, plans));
    const message = { sender: { accountId: Buffer.from(alice.client.identity.accountId), deviceId: alice.client.identity.device.deviceId }, clientMessageId: Buffer.from(sent.clientMessageId, 'base64url') };
    const recalled = await repo.recall(message, [bob, carol].map((t) => Buffer.from(t.client.identity.accountId)));
    expect(recalled.map((c) => Buffer.from(c.recipient.accountId).toString('hex')).sort()).toEqual([bob, carol].map((t) => Buffer.from(t.client.identity.accountId).toString('hex')).sort());
    expect(plans).toHaveLength(1);
    const scans = scansOf(plans[0]!);
    expect(new Set(scans.map((n) => n.relation))).toEqual(named);
    // Each through its partition's primary key (recipient_account, recipient_device, seq); never envelopes_message.
    for (const n of scans) expect(n.index).toBe(`${n.relation}_pkey`);
    expect(JSON.stringify(plans[0])).not.toMatch(/sender_account_sender_device_client_message_id|envelopes_message/);
    expect(await copies(sent.clientMessageId)).toBe(1);
  });

  it('a connected recipient holding an unacknowledged copy is told "recalled", and the copy leaves its window', async () => {
    const alice = await pool.registered();
    const bob = await pool.registered();
    await alice.client.connect();
    const raw = await rawSocket(bob);
    const sent = await alice.client.send({ recipients: [toDevice(bob)] });
    await waitFor(() => raw.messages.length === 1, 5000, 'the push');
    const id = raw.messages[0]!.id;

    expect((await recall(alice, sent.clientMessageId, [bob, alice])).body).toEqual({ recalled: 1 });
    await waitFor(() => raw.recalled.length === 1, 5000, 'the recalled event');
    expect(raw.recalled[0]).toEqual({
      ids: [id],
      messages: [{ senderAccountId: alice.client.identity.accountIdText, senderDeviceId: alice.client.identity.device.deviceId, clientMessageId: sent.clientMessageId }],
    });
    expect(await copies(sent.clientMessageId)).toBe(0);
    // The socket still gets what is sent next.
    const next = await alice.client.send({ recipients: [toDevice(bob, randomContent())] });
    await waitFor(() => raw.messages.some((m) => m.clientMessageId === next.clientMessageId), 5000, 'the next push');
  });

  it('typing reaches an online device, an offline one gets nothing, and nothing is stored in Postgres or Redis', async () => {
    const alice = await pool.registered();
    const bob = await pool.registered();
    const carol = await pool.registered();
    await alice.client.connect();
    const seen: TypingEvent[] = [];
    bob.client.on('typing', (ev) => seen.push(ev));
    await bob.client.connect();

    const prefix = stack.env.REDIS_PREFIX!;
    const keysBefore = new Set(await redis.keys(`${prefix}*`));
    const rowsOf = async () =>
      (await db.query(
        `SELECT (SELECT count(*)::int FROM envelopes WHERE recipient_account = ANY($1::bytea[]) OR sender_account = ANY($1::bytea[])) AS e,
                (SELECT count(*)::int FROM message_sends WHERE sender_account = ANY($1::bytea[])) AS s`,
        [[alice, bob, carol].map((t) => Buffer.from(t.client.identity.accountId))],
      )) as { e: number; s: number }[];
    const rowsBefore = await rowsOf();

    expect(await alice.client.typing(bob.client.identity.accountIdText, 'started')).toEqual({ devices: 1 });
    await waitFor(() => seen.length === 1, 5000, 'typing');
    expect(seen[0]).toEqual({ from: alice.client.identity.accountIdText, fromDeviceId: alice.client.identity.device.deviceId, state: 'started' });
    expect(await alice.client.typing(bob.client.identity.accountIdText, 'stopped')).toEqual({ devices: 1 });
    await waitFor(() => seen.length === 2, 5000, 'typing stopped');
    expect(seen[1]!.state).toBe('stopped');

    // Carol is offline: nothing reaches her, not even when she connects later.
    expect(await alice.client.typing(carol.client.identity.accountIdText, 'started')).toEqual({ devices: 0 });
    const later: TypingEvent[] = [];
    carol.client.on('typing', (ev) => later.push(ev));
    await carol.client.connect();
    await waitFor(() => carol.queueEmpty > 0, 5000, 'queue-empty');
    await new Promise((r) => setTimeout(r, 300));
    expect(later).toEqual([]);
    expect(carol.received).toEqual([]);

    expect(await rowsOf()).toEqual(rowsBefore);
    const keysAfter = await redis.keys(`${prefix}*`);
    const carolHex = Buffer.from(carol.client.identity.accountId).toString('hex');
    // Carol's connection adds her presence key; typing itself adds none.
    expect(keysAfter.filter((k) => !keysBefore.has(k) && !k.includes(carolHex))).toEqual([]);
    expect(keysAfter.filter((k) => k.includes('typing'))).toEqual([]);
  });

  it('bad input is refused with stable codes', async () => {
    const alice = await pool.registered();
    await alice.client.connect();
    const bob = await pool.registered();
    const id = randomBytes(16).toString('base64url');
    const refused = (code: string) => ({ status: 400, body: { error: { code } } });
    expect(await recall(alice, 'not*base64', [bob])).toMatchObject(refused('BAD_ENCODING'));
    expect(await recall(alice, randomBytes(8).toString('base64url'), [bob])).toMatchObject(refused('VALIDATION_FAILED'));
    // The accounts: none, too many, not account ids, not a list, missing.
    expect(await recall(alice, id, [])).toMatchObject(refused('VALIDATION_FAILED'));
    const tooMany = Array.from({ length: LIMITS.MAX_RECALL_ACCOUNTS + 1 }, () => encodeAccountId(randomBytes(32)));
    expect(await recall(alice, id, tooMany)).toMatchObject(refused('VALIDATION_FAILED'));
    expect(await recall(alice, id, tooMany.slice(0, LIMITS.MAX_RECALL_ACCOUNTS))).toMatchObject({ status: 200, body: { recalled: 0 } });
    const ok = bob.client.identity.accountIdText;
    const badChecksum = `${ok.slice(0, -1)}${ok.endsWith('q') ? 'p' : 'q'}`;
    for (const bad of ['um1nope', badChecksum, ok.toUpperCase(), Buffer.from(bob.client.identity.accountId).toString('hex'), '']) {
      expect(await recall(alice, id, [ok, bad])).toMatchObject(refused('VALIDATION_FAILED'));
    }
    expect(await post(alice, { clientMessageId: id, accountIds: ok })).toMatchObject(refused('VALIDATION_FAILED'));
    expect(await post(alice, { clientMessageId: id, accountIds: [7] })).toMatchObject(refused('VALIDATION_FAILED'));
    expect(await post(alice, { clientMessageId: id })).toMatchObject(refused('VALIDATION_FAILED'));
    expect(await recall(alice, id, [bob], { senderDeviceId: 1 })).toMatchObject(refused('VALIDATION_FAILED'));
    expect((await post(null, { clientMessageId: id, accountIds: [ok] })).status).toBe(401);
    // The DELETE route of the first version is gone.
    const gone = await fetch(`${stack.origin}/v1/messages/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${await alice.client.getToken()}` } });
    expect(gone.status).toBe(404);

    const raw = await rawSocket(alice);
    const other = await pool.registered();
    expect(await emit(raw.socket, ClientEvent.Typing, { to: 'um1nope', state: 'started' })).toMatchObject({ ok: false, error: { code: 'VALIDATION_FAILED' } });
    expect(await emit(raw.socket, ClientEvent.Typing, { to: other.client.identity.accountIdText, state: 'dancing' })).toMatchObject({ ok: false, error: { code: 'VALIDATION_FAILED' } });
    expect(await emit(raw.socket, ClientEvent.Typing, { to: other.client.identity.accountIdText, state: 'started', extra: 1 })).toMatchObject({ ok: false, error: { code: 'VALIDATION_FAILED' } });
    // A well-formed account id that is not registered.
    expect(await emit(raw.socket, ClientEvent.Typing, { to: encodeAccountId(randomBytes(32)), state: 'started' })).toMatchObject({ ok: false, error: { code: 'ACCOUNT_NOT_FOUND' } });
  });

  it('recall draws on the per-device send limit; typing has its own per-socket limit', async () => {
    const alice = await pool.registered();
    const id = randomBytes(16).toString('base64url');
    const answers: Answer[] = [];
    for (let i = 0; i < SEND_RATE * 2 + 5; i++) answers.push(await recall(alice, id, [alice]));
    const limited = answers.filter((a) => a.status === 429);
    expect(limited.length).toBeGreaterThan(0);
    expect(limited[0]).toMatchObject({ body: { error: { code: 'RATE_LIMITED' } } });
    expect(Number(limited[0]!.retryAfter)).toBeGreaterThanOrEqual(1);

    const bob = await pool.registered();
    const raw = await rawSocket(alice);
    const results = await Promise.all(Array.from({ length: 30 }, () => emit(raw.socket, ClientEvent.Typing, { to: bob.client.identity.accountIdText, state: 'started' })));
    expect(results.filter((r) => !r.ok && r.error.code === 'RATE_LIMITED').length).toBeGreaterThan(0);
    expect(results.filter((r) => r.ok).length).toBeGreaterThan(0);
  });

  describe('delete for everyone (SDK Messenger and the CLI)', () => {
    interface Device {
      client: UmbraClient;
      messenger: Messenger;
      inbox: ReceivedMessage[];
    }
    const devices: Device[] = [];
    afterAll(async () => {
      for (const d of devices) await d.client.close();
    });

    async function device(): Promise<Device> {
      const store = new MemoryStore();
      const client = await UmbraClient.open({ serverUrl: stack.origin, store, sendTimeoutMs: 10_000 });
      await client.createIdentity();
      await client.register();
      await client.refillPrekeys();
      const messenger = await Messenger.open(client, store);
      const d: Device = { client, messenger, inbox: [] };
      messenger.on('message', (m) => void d.inbox.push(m));
      devices.push(d);
      return d;
    }

    it('recalls the copy an offline device has not received: it only ever gets the del, never the ciphertext', async () => {
      const alice = await device();
      const bob = await device();
      await alice.client.connect();
      const me = alice.client.identity.accountIdText;
      const peer = bob.client.identity.accountIdText;
      const sent = await alice.messenger.sendText(peer, 'take this back');
      const [entry] = await alice.messenger.history.list(peer);
      expect(await alice.messenger.findOwnSend(sent.clientMessageId)).toEqual(entry);
      expect(await copies(sent.clientMessageId)).toBe(1);

      expect(await alice.messenger.deleteForEveryone(peer, entry!.id)).toEqual({ recalled: 1 });
      expect(await copies(sent.clientMessageId)).toBe(0);
      expect(await alice.messenger.history.list(peer)).toEqual([]);

      await bob.client.connect();
      await waitFor(() => bob.inbox.length === 1, 10_000, 'the del');
      await bob.client.settle();
      expect(bob.inbox.map((m) => ({ from: m.from, k: m.content.k, target: m.content.target }))).toEqual([{ from: me, k: 'del', target: entry!.id }]);
      expect(await bob.messenger.history.list(me)).toEqual([]);
    });

    it('a device that already has the message deletes it on the del; only the author can delete', async () => {
      const alice = await device();
      const bob = await device();
      await alice.client.connect();
      await bob.client.connect();
      const me = alice.client.identity.accountIdText;
      const peer = bob.client.identity.accountIdText;
      const sent = await alice.messenger.sendText(peer, 'seen already');
      await waitFor(async () => (await bob.messenger.history.list(me)).length === 1, 10_000, 'the message in bob\'s history');
      await bob.client.settle();
      await waitFor(async () => (await copies(sent.clientMessageId)) === 0, 5000, 'the ack');
      const [theirs] = await bob.messenger.history.list(me);
      // Bob cannot delete alice's message for everyone.
      await expect(bob.messenger.deleteForEveryone(me, theirs!.id)).rejects.toThrow('only your own messages');

      const [ours] = await alice.messenger.history.list(peer);
      expect(await alice.messenger.deleteForEveryone(peer, ours!.id)).toEqual({ recalled: 0 });
      await waitFor(async () => (await bob.messenger.history.list(me)).length === 0, 10_000, 'the del to delete bob\'s copy');
      expect(bob.inbox.map((m) => m.content.k)).toEqual(['text', 'del']);
    });

    it("another device of the sender's own account cannot recall its send either", async () => {
      const alice = await device();
      const bob = await device();
      const second = await UmbraClient.open({ serverUrl: stack.origin, store: new MemoryStore(), sendTimeoutMs: 10_000 });
      devices.push({ client: second, messenger: undefined as never, inbox: [] });
      let qr!: (code: string) => void;
      const code = new Promise<string>((r) => (qr = r));
      const linking = linkThisDevice(second, { onQr: qr, confirmAccount: () => true, timeoutMs: 20_000 });
      await linkNewDevice(alice.client, alice.messenger, await code, 20_000);
      const identity = await linking;
      expect(identity.accountIdText).toBe(alice.client.identity.accountIdText);
      expect(identity.device.deviceId).not.toBe(alice.client.identity.device.deviceId);

      await alice.client.connect();
      const sent = await alice.client.send({ recipients: [{ accountId: bob.client.identity.accountIdText, deviceId: bob.client.identity.device.deviceId, type: 2, content: randomContent() }] });
      const named = [bob.client.identity.accountIdText, alice.client.identity.accountIdText];
      expect(await second.recall(sent.clientMessageId, named)).toEqual({ recalled: 0 });
      expect(await copies(sent.clientMessageId)).toBe(1);
      expect(await alice.client.recall(sent.clientMessageId, named)).toEqual({ recalled: 1 });
    });

    it('reply quotes, react keeps one reaction per account, edit converges on the latest and only the author edits', async () => {
      const alice = await device();
      const bob = await device();
      await alice.client.connect();
      await bob.client.connect();
      const me = alice.client.identity.accountIdText;
      const peer = bob.client.identity.accountIdText;
      await alice.messenger.sendText(peer, 'hello');
      await waitFor(async () => (await bob.messenger.history.list(me)).length === 1, 10_000, 'hello at bob');
      const [hello] = await bob.messenger.history.list(me);

      await bob.messenger.reply(me, hello!.id, 'hi back');
      await waitFor(async () => (await alice.messenger.history.list(peer)).length === 2, 10_000, 'the reply at alice');
      const reply = (await alice.messenger.history.list(peer)).find((e) => !e.outgoing)!;
      expect(reply.content).toMatchObject({ k: 'text', text: 'hi back', reply: { id: hello!.id, from: me, text: 'hello' } });

      await bob.messenger.react(me, hello!.id, '👍');
      await waitFor(async () => (await alice.messenger.history.get(peer, hello!.id))?.reactions?.[peer]?.emoji === '👍', 10_000, 'the reaction at alice');
      expect((await bob.messenger.history.get(me, hello!.id))?.reactions?.[peer]?.emoji).toBe('👍');
      await bob.messenger.react(me, hello!.id, null);
      await waitFor(async () => (await alice.messenger.history.get(peer, hello!.id))?.reactions?.[peer]?.emoji === '', 10_000, 'the reaction removed');

      await alice.messenger.edit(peer, hello!.id, 'hello, edited');
      await alice.messenger.edit(peer, hello!.id, 'hello, edited twice');
      await waitFor(async () => (await bob.messenger.history.get(me, hello!.id))?.edited?.text === 'hello, edited twice', 10_000, 'the latest edit at bob');
      expect((await alice.messenger.history.get(peer, hello!.id))?.edited?.text).toBe('hello, edited twice');
      // An edit that arrives late (an older ts) changes nothing.
      const stale = { v: 1 as const, id: randomBytes(16).toString('base64url'), ts: 1, k: 'edit' as const, target: hello!.id, text: 'stale' };
      const inbox = bob.inbox.length;
      await alice.messenger.sendContent(peer, stale);
      await waitFor(() => bob.inbox.length > inbox, 10_000, 'the stale edit');
      expect((await bob.messenger.history.get(me, hello!.id))?.edited?.text).toBe('hello, edited twice');

      // Only the author edits or deletes: bob's forged edit and del of alice's message change nothing at alice.
      await expect(bob.messenger.edit(me, hello!.id, 'forged')).rejects.toThrow('only your own messages');
      const before = alice.inbox.length;
      await bob.messenger.sendContent(me, { v: 1, id: randomBytes(16).toString('base64url'), ts: Date.now(), k: 'edit', target: hello!.id, text: 'forged' });
      await bob.messenger.sendContent(me, { v: 1, id: randomBytes(16).toString('base64url'), ts: Date.now(), k: 'del', target: hello!.id });
      await waitFor(() => alice.inbox.length >= before + 2, 10_000, 'the forged contents');
      expect(await alice.messenger.history.get(peer, hello!.id)).toMatchObject({ edited: { text: 'hello, edited twice' }, content: { text: 'hello' } });
    });

    it('umbra delete <message id> recalls and deletes for everyone (human and --json); a bad id is refused', async () => {
      const umbra = async (home: string, ...args: string[]) => runUmbra(['--home', home, '--server', stack.origin, ...args]);
      const a = mkdtempSync(path.join(tmpdir(), 'umbra-recall-a-'));
      const b = mkdtempSync(path.join(tmpdir(), 'umbra-recall-b-'));
      for (const home of [a, b]) {
        expect((await umbra(home, 'init')).code).toBe(0);
        expect((await umbra(home, 'register')).code).toBe(0);
      }
      const bob = (await umbra(b, 'whoami', '--json')).stdout;
      const bobId = (JSON.parse(bob) as { accountId: string }).accountId;

      const first = await umbra(a, 'send', bobId, 'first');
      expect(first).toMatchObject({ code: 0, stdout: `sent to ${bobId}\n` });
      const id = /^umbra: message id ([A-Za-z0-9_-]{22}) /.exec(first.stderr)?.[1];
      expect(id).toBeDefined();
      expect(await copies(id!)).toBe(1);
      expect(await umbra(a, 'delete', id!)).toMatchObject({ code: 0, stdout: 'deleted for everyone (1 undelivered copy recalled before delivery)\n' });
      expect(await copies(id!)).toBe(0);
      const history = (await umbra(a, '--json', 'history', bobId)).stdout.split('\n').filter(Boolean);
      expect(history).toEqual([]);

      const second = JSON.parse((await umbra(a, '--json', 'send', bobId, 'second')).stdout) as { clientMessageId: string };
      const listed = JSON.parse((await umbra(a, '--json', 'history', bobId)).stdout.trim()) as { clientMessageId: string; text: string };
      expect(listed).toMatchObject({ clientMessageId: second.clientMessageId, text: 'second' });
      expect(JSON.parse((await umbra(a, '--json', 'delete', second.clientMessageId)).stdout)).toEqual({ deleted: true, conv: bobId, clientMessageId: second.clientMessageId, recalled: 1 });
      // Not in the history any more: only a recall, within the conversation named, which finds nothing.
      expect(await umbra(a, 'delete', second.clientMessageId)).toMatchObject({ code: 1, stderr: expect.stringContaining(`name its conversation: umbra delete ${second.clientMessageId} <`) });
      expect(JSON.parse((await umbra(a, '--json', 'delete', second.clientMessageId, bobId)).stdout)).toEqual({ deleted: false, conv: bobId, clientMessageId: second.clientMessageId, recalled: 0 });
      expect(await umbra(a, 'delete', 'nope')).toMatchObject({ code: 1, stderr: expect.stringContaining('not a message id: nope') });

      // reply, react and edit on the author's side (the SDK test covers the peer's).
      const third = JSON.parse((await umbra(a, '--json', 'send', bobId, 'third')).stdout) as { clientMessageId: string };
      void third;
      const [line] = (await umbra(a, 'history', '--ids', bobId)).stdout.trim().split('\n');
      const id3 = /^\[([A-Za-z0-9_-]{22})\] /.exec(line!)?.[1];
      expect(id3).toBeDefined();
      expect(await umbra(a, 'edit', bobId, id3!, 'third,', 'edited')).toMatchObject({ code: 0, stdout: `edited (${bobId})\n` });
      expect(await umbra(a, 'react', bobId, id3!, '🎉')).toMatchObject({ code: 0, stdout: `reacted 🎉 (${bobId})\n` });
      expect(await umbra(a, 'reply', bobId, id3!, 'a', 'reply')).toMatchObject({ code: 0, stdout: `replied to ${bobId}\n` });
      const lines = (await umbra(a, 'history', bobId)).stdout.trim().split('\n');
      expect(lines).toHaveLength(2);
      expect(lines[0]).toMatch(/  me: third, edited \(edited\)  \[🎉\]$/);
      expect(lines[1]).toMatch(/  me: \(replying to me: "third"\) a reply$/);
      expect(await umbra(a, 'react', bobId, id3!, 'this is not an emoji at all')).toMatchObject({ code: 1 });

    }, 240_000);
  });
});

import { io, type Socket } from 'socket.io-client';
import { DataSource } from 'typeorm';
import { ClientEvent, WS_PATH, type WsAck } from '@umbra/protocol';
import { Bus, Channels, QUEUE_RECOUNT_INTERVAL_MS, type Channel } from '@umbra/server';
import { TestStack, TEST_DATABASE_URL, waitFor } from './support/harness';
import { ClientPool, randomContent, toDevice, type TestClient } from './support/clients';
import { linkDevice, newAccount, type E2eeDevice } from './support/devices';
import { RelayProcessor } from '../services/message-relay/src/relay/relay.processor';
import { SUITE_V1, createDeviceCertificate, createSignedDeviceList, generateSecretKey, pub } from '@umbra/crypto';

/** Issue 12, the send path: a send limit shared by gateways, recipient queue caps, 64-bit ids, revocation on send. */

interface Answer {
  status: number;
  body: { error?: { code: string }; [k: string]: unknown };
  retryAfter: string | null;
}

async function rest(base: string, token: string, method: string, path: string, body?: unknown): Promise<Answer> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as Answer['body'], retryAfter: res.headers.get('retry-after') };
}

function rawSocket(origin: string, token: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = io(origin, { path: WS_PATH, transports: ['websocket'], auth: { token }, reconnection: false });
    s.on('connect', () => resolve(s));
    s.on('connect_error', reject);
  });
}

function emit(s: Socket, event: string, payload: unknown): Promise<WsAck<unknown>> {
  return new Promise((resolve) => s.timeout(10_000).emit(event, payload, (err: Error | null, res: WsAck<unknown>) => resolve(err ? { ok: false, error: { code: 'UNAVAILABLE', message: 'timeout' } } : res)));
}

const newSend = (...to: TestClient[]) => ({ clientMessageId: randomContent(16), recipients: to.map((t) => toDevice(t, randomContent(64))) });

async function queueRows(db: DataSource, t: TestClient): Promise<number> {
  const rows: { n: number }[] = await db.query('SELECT count(*)::int AS n FROM envelopes WHERE recipient_account = $1 AND recipient_device = $2', [
    Buffer.from(t.client.identity.accountId),
    t.client.identity.device.deviceId,
  ]);
  return rows[0]!.n;
}

describe('send limit, 64-bit ids and revocation (2 gateways)', () => {
  let stack: TestStack;
  let db: DataSource;
  const pool = new ClientPool(() => stack.origin);
  const devices: E2eeDevice[] = [];
  const sockets: Socket[] = [];

  beforeAll(async () => {
    stack = await TestStack.start({
      instances: { gateway: 2, 'message-relay': 1 },
      env: { RATE_LIMIT_SEND_PER_DEVICE_PER_SECOND: '5', DEVICE_SET_CACHE_TTL_MS: '1000', RATE_LIMIT_REGISTER_PER_IP_PER_HOUR: '1000' },
    });
    db = new DataSource({ type: 'postgres', url: TEST_DATABASE_URL });
    await db.initialize();
  });

  afterAll(async () => {
    for (const s of sockets) s.close();
    for (const d of devices) await d.client.close();
    await pool.closeAll();
    await stack.stop();
    await db.destroy();
  });

  it('one device sending through both gateways (REST and socket) hits one shared limit', async () => {
    const alice = await pool.registered();
    const bob = await pool.registered();
    const token = await alice.client.getToken();
    const [gw1, gw2] = stack.of('gateway').map((g) => g.svc.url);
    const answers: Answer[] = [];
    const started = Date.now();
    for (let i = 0; i < 24; i++) answers.push(await rest(i % 2 === 0 ? gw1! : gw2!, token, 'POST', '/v1/messages', newSend(bob)));
    const elapsedS = (Date.now() - started) / 1000;
    const ok = answers.filter((a) => a.status === 200);
    const limited = answers.filter((a) => a.status === 429);
    expect(ok.length + limited.length).toBe(answers.length);
    // Burst 2 × 5, plus what refilled while the loop ran.
    expect(ok.length).toBeLessThanOrEqual(10 + Math.ceil(elapsedS * 5) + 1);
    expect(limited.length).toBeGreaterThan(0);
    expect(limited[0]!.body.error?.code).toBe('RATE_LIMITED');
    expect(Number(limited[0]!.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(answers.filter((a, i) => i % 2 === 0 && a.status === 200).length).toBeGreaterThan(0);
    expect(answers.filter((a, i) => i % 2 === 1 && a.status === 200).length).toBeGreaterThan(0);
    expect(await queueRows(db, bob)).toBe(ok.length);

    // The socket path draws from the same bucket: empty it over REST, then the socket is refused too
    // (six at once: at most one token refills in the meantime at 5/s on a loaded machine).
    const socket = await rawSocket(gw2!, token);
    sockets.push(socket);
    while ((await rest(gw1!, token, 'POST', '/v1/messages', newSend(bob))).status === 200);
    const viaSocket = await Promise.all(Array.from({ length: 6 }, () => emit(socket, ClientEvent.Send, newSend(bob))));
    expect(viaSocket.filter((r) => !r.ok && r.error.code === 'RATE_LIMITED').length).toBeGreaterThanOrEqual(4);
  });

  it('rejects envelope ids outside 1..2^63-1 with 400 and accepts 2^63-1 without a 500', async () => {
    const alice = await pool.registered();
    const token = await alice.client.getToken();
    const o = stack.origin;
    const bad = await rest(o, token, 'GET', '/v1/messages?after=9999999999999999999');
    expect(bad.status).toBe(400);
    expect(bad.body.error?.code).toBe('VALIDATION_FAILED');
    expect((await rest(o, token, 'GET', '/v1/messages?after=9223372036854775808')).status).toBe(400);
    const max = await rest(o, token, 'GET', '/v1/messages?after=9223372036854775807');
    expect(max.status).toBe(200);
    expect(max.body).toEqual({ messages: [], more: false });

    const read = await rest(o, token, 'POST', '/v1/messages/read', { ids: ['9223372036854775807'] });
    expect(read.status).toBe(200);
    expect(read.body).toEqual({ lowered: 0 });
    const readBad = await rest(o, token, 'POST', '/v1/messages/read', { ids: ['9223372036854775808'] });
    expect(readBad.status).toBe(400);
    expect(readBad.body.error?.code).toBe('VALIDATION_FAILED');
    for (const ids of [['9999999999999999999'], ['0'], ['-1'], ['1e3'], [' 1']]) {
      const ack = await rest(o, token, 'POST', '/v1/messages/ack', { ids });
      expect([ids, ack.status, ack.body.error?.code]).toEqual([ids, 400, 'VALIDATION_FAILED']);
    }
  });

  it('an ack batch with a poisoned item still deletes the other devices\' rows, and counts the bad one', async () => {
    const alice = await pool.registered();
    const bob = await pool.registered();
    const carol = await pool.registered();
    const token = await alice.client.getToken();
    expect((await rest(stack.origin, token, 'POST', '/v1/messages', newSend(bob, carol))).status).toBe(200);
    const bobId = (await bob.client.fetchMessages()).messages[0]!.id;
    const carolId = (await carol.client.fetchMessages()).messages[0]!.id;
    const hex = (t: TestClient) => Buffer.from(t.client.identity.accountId).toString('hex');
    const relay = stack.of('message-relay')[0]!.svc.app.get(RelayProcessor);
    // A job written by an older gateway, or tampered with in Redis: one item carries ids Postgres cannot hold.
    await relay.ackBatch({
      items: [
        { account: hex(bob), deviceId: bob.client.identity.device.deviceId, seqs: [bobId] },
        { account: hex(alice), deviceId: alice.client.identity.device.deviceId, seqs: ['9999999999999999999', '-5', 'x'] },
        { account: 'zz', deviceId: 1, seqs: ['1'] },
        { account: hex(carol), deviceId: carol.client.identity.device.deviceId, seqs: [carolId] },
      ],
    } as never);
    expect(await queueRows(db, bob)).toBe(0);
    expect(await queueRows(db, carol)).toBe(0);
    const metrics = await (await fetch(`${stack.of('message-relay')[0]!.svc.url}/metrics`)).text();
    expect(metrics).toMatch(/umbra_invalid_job_items_total\{[^}]*queue="ack"[^}]*\} [2-9]/);
  });

  it('a device removed while its close broadcast is lost cannot send after the cache TTL', async () => {
    const owner = await newAccount(stack.origin);
    devices.push(owner);
    const second = await linkDevice(stack.origin, owner);
    devices.push(second);
    const ownerId = owner.client.identity.device.deviceId;
    const toOwner = () => ({ recipients: [{ accountId: owner.client.identity.accountIdText, deviceId: ownerId, type: 2 as const, content: randomContent(64) }] });
    const secondToken = await second.client.getToken();
    await expect(second.client.send(toOwner())).resolves.toMatchObject({ duplicate: false });

    // Lose every devices-changed broadcast from now on: the gateways never hear of the removal.
    const kdBus = stack.of('key-directory')[0]!.svc.app.get(Bus);
    const publish = kdBus.publish.bind(kdBus);
    const lost = Channels.devicesChanged(stack.env.REDIS_PREFIX!);
    kdBus.publish = (async (channel: Channel<unknown>, message: unknown) => {
      if (channel !== lost) await publish(channel, message);
    }) as typeof kdBus.publish;
    try {
      const id = owner.client.identity;
      const own = (await owner.messenger.deviceList(id.accountIdText)).devices.filter((d) => d.deviceId === ownerId).map((d) => d.bytes);
      const list = createSignedDeviceList({ aik: id.aik, listVersion: id.listVersion + 1, issuedAt: Date.now(), certificates: own }, id.aikSk!);
      expect((await owner.client.publishDeviceList(list, id.listVersion + 1)).removedDeviceIds).toEqual([second.client.identity.device.deviceId]);

      // The removed device's socket is still open; within the TTL (1 s here) its sends are refused.
      const socket = await rawSocket(stack.origin, secondToken).catch(() => undefined);
      expect(socket).toBeUndefined(); // a new socket needs a valid token
      const started = Date.now();
      let refused: WsAck<unknown> | undefined;
      await waitFor(async () => {
        const r = await second.client.send(toOwner()).then(
          () => undefined,
          (err: { code?: string }) => ({ ok: false as const, error: { code: err.code as never, message: '' } }),
        );
        refused = r;
        return r !== undefined;
      }, 5000, 'the removed device to be refused');
      expect(Date.now() - started).toBeLessThan(3000);
      // The device list and the token are re-checked side by side; either answer is a 401.
      expect(['DEVICE_NOT_IN_LIST', 'TOKEN_INVALID']).toContain((refused as { error: { code: string } }).error.code);
      const viaRest = await rest(stack.origin, secondToken, 'POST', '/v1/messages', { clientMessageId: randomContent(16), ...toOwner() });
      expect(viaRest.status).toBe(401);
      expect(['TOKEN_INVALID', 'DEVICE_NOT_IN_LIST']).toContain(viaRest.body.error?.code);
    } finally {
      kdBus.publish = publish;
    }
  });

  it('a device re-keyed under the same id (its old tokens gone) while the broadcast is lost cannot send after the TTL', async () => {
    const owner = await newAccount(stack.origin);
    devices.push(owner);
    const second = await linkDevice(stack.origin, owner);
    devices.push(second);
    const ownerId = owner.client.identity.device.deviceId;
    const secondId = second.client.identity.device.deviceId;
    const toOwner = () => ({ recipients: [{ accountId: owner.client.identity.accountIdText, deviceId: ownerId, type: 2 as const, content: randomContent(64) }] });
    await expect(second.client.send(toOwner())).resolves.toMatchObject({ duplicate: false });

    const kdBus = stack.of('key-directory')[0]!.svc.app.get(Bus);
    const publish = kdBus.publish.bind(kdBus);
    const lost = Channels.devicesChanged(stack.env.REDIS_PREFIX!);
    kdBus.publish = (async (channel: Channel<unknown>, message: unknown) => {
      if (channel !== lost) await publish(channel, message);
    }) as typeof kdBus.publish;
    try {
      // Same device id, new device key: the device list still names the id, but the old device's tokens are gone.
      const id = owner.client.identity;
      const dikSk = generateSecretKey();
      const rekeyed = createDeviceCertificate({ suite: SUITE_V1, aik: id.aik, deviceId: secondId, dik: pub(dikSk), createdAt: Date.now(), flags: 0 }, id.aikSk!, dikSk);
      const own = (await owner.messenger.deviceList(id.accountIdText)).devices.filter((d) => d.deviceId === ownerId).map((d) => ({ id: d.deviceId, bytes: d.bytes }));
      const certs = [...own, { id: secondId, bytes: rekeyed }].sort((a, b) => a.id - b.id).map((c) => c.bytes);
      const list = createSignedDeviceList({ aik: id.aik, listVersion: id.listVersion + 1, issuedAt: Date.now(), certificates: certs }, id.aikSk!);
      expect((await owner.client.publishDeviceList(list, id.listVersion + 1)).removedDeviceIds).toEqual([secondId]);

      const started = Date.now();
      let code: string | undefined;
      await waitFor(async () => {
        code = await second.client.send(toOwner()).then(
          () => undefined,
          (err: { code?: string }) => err.code,
        );
        return code !== undefined;
      }, 5000, 'the re-keyed device\'s old socket to be refused');
      expect(Date.now() - started).toBeLessThan(3000);
      expect(code).toBe('TOKEN_INVALID');
    } finally {
      kdBus.publish = publish;
    }
  });
});

describe('recipient queue caps', () => {
  let stack: TestStack;
  let db: DataSource;
  const pool = new ClientPool(() => stack.origin);

  beforeAll(async () => {
    stack = await TestStack.start({
      instances: { gateway: 1, 'message-relay': 2 },
      env: { QUEUE_MAX_ENVELOPES_PER_DEVICE: '3', QUEUE_MAX_BYTES_PER_DEVICE: '20000', RATE_LIMIT_REGISTER_PER_IP_PER_HOUR: '1000' },
    });
    db = new DataSource({ type: 'postgres', url: TEST_DATABASE_URL });
    await db.initialize();
  });

  afterAll(async () => {
    await pool.closeAll();
    await stack.stop();
    await db.destroy();
  });

  it('a send that would overflow any recipient queue gets QUEUE_FULL, and no recipient gets it; acks free space', async () => {
    const alice = await pool.registered();
    const bob = await pool.registered();
    const carol = await pool.registered();
    const token = await alice.client.getToken();
    const o = stack.origin;
    for (let i = 0; i < 3; i++) expect((await rest(o, token, 'POST', '/v1/messages', newSend(bob))).status).toBe(200);
    expect(await queueRows(db, bob)).toBe(3);

    const full = newSend(carol, bob);
    const refused = await rest(o, token, 'POST', '/v1/messages', full);
    expect(refused.status).toBe(429);
    expect(refused.body.error?.code).toBe('QUEUE_FULL');
    expect(await queueRows(db, bob)).toBe(3);
    expect(await queueRows(db, carol)).toBe(0);
    const record: { n: number }[] = await db.query('SELECT count(*)::int AS n FROM message_sends WHERE client_message_id = $1', [Buffer.from(full.clientMessageId, 'base64url')]);
    expect(record[0]!.n).toBe(0);

    // An idempotent retry of a message already stored is still answered "duplicate", full queue or not.
    const stored = newSend(carol);
    expect((await rest(o, token, 'POST', '/v1/messages', stored)).body).toMatchObject({ duplicate: false });
    const page = await bob.client.fetchMessages();
    await bob.client.api('POST', '/v1/messages/ack', { ids: [page.messages[0]!.id] });
    await waitFor(async () => (await queueRows(db, bob)) === 2, 5000, 'the ack');
    // A queue that looked full is recounted at most once per QUEUE_RECOUNT_INTERVAL_MS (1 s): the freed place shows within it.
    let retry = await rest(o, token, 'POST', '/v1/messages', full);
    const deadline = Date.now() + QUEUE_RECOUNT_INTERVAL_MS + 3000;
    while (retry.status === 429 && Date.now() < deadline) {
      expect(retry.body.error?.code).toBe('QUEUE_FULL');
      await new Promise((r) => setTimeout(r, 100));
      retry = await rest(o, token, 'POST', '/v1/messages', full);
    }
    expect(retry.status).toBe(200);
    expect(await queueRows(db, bob)).toBe(3);
    expect(await queueRows(db, carol)).toBe(2);
    expect((await rest(o, token, 'POST', '/v1/messages', stored)).body).toMatchObject({ duplicate: true });
  });

  it('caps bytes too, and concurrent sends through two relays never overfill a queue', async () => {
    const alice = await pool.registered();
    const dave = await pool.registered();
    const erin = await pool.registered();
    const token = await alice.client.getToken();
    const o = stack.origin;
    const big = (t: TestClient, bytes: number) => ({ clientMessageId: randomContent(16), recipients: [toDevice(t, randomContent(bytes))] });
    expect((await rest(o, token, 'POST', '/v1/messages', big(dave, 15_000))).status).toBe(200);
    const over = await rest(o, token, 'POST', '/v1/messages', big(dave, 6_000));
    expect([over.status, over.body.error?.code]).toEqual([429, 'QUEUE_FULL']);
    expect(await queueRows(db, dave)).toBe(1);

    const answers = await Promise.all(Array.from({ length: 8 }, () => rest(o, token, 'POST', '/v1/messages', newSend(erin))));
    expect(answers.filter((a) => a.status === 200).length).toBe(3);
    expect(answers.filter((a) => a.body.error?.code === 'QUEUE_FULL').length).toBe(5);
    expect(await queueRows(db, erin)).toBe(3);
  });
});

import IORedis from 'ioredis';
import { io, type Socket } from 'socket.io-client';
import WebSocket from 'ws';
import { DataSource } from 'typeorm';
import { LIMITS, MAX_SOCKET_FRAME_BYTES, WS_PATH, type DeliveredEnvelope } from '@umbra/protocol';
import { Bus, EnvelopeStoreRepository, PresenceStore, deviceKey } from '@umbra/server';
import { ConnectionsService } from '../services/gateway/src/delivery/connections.service';
import { TestStack, TEST_DATABASE_URL, TEST_REDIS_URL, waitFor, type TestInstance } from './support/harness';
import { ClientPool, randomContent, toDevice, waitReceived, type TestClient } from './support/clients';

/** A bare socket.io client that records what it is pushed and acks only when told. */
interface RawClient {
  s: Socket;
  received: DeliveredEnvelope[];
  queueEmpty: number;
  closed: boolean;
}

function rawClient(url: string, token: string): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const s: Socket = io(url, { path: WS_PATH, transports: ['websocket'], auth: { token }, reconnection: false });
    const c: RawClient = { s, received: [], queueEmpty: 0, closed: false };
    s.on('messages', ({ messages }: { messages: DeliveredEnvelope[] }) => c.received.push(...messages));
    s.on('queue-empty', () => c.queueEmpty++);
    s.on('disconnect', () => (c.closed = true));
    s.once('connect', () => resolve(c));
    s.once('connect_error', reject);
  });
}

type Reply = { ok: boolean; error?: { code: string } };
const call = (s: Socket, event: string, payload: unknown) =>
  new Promise<Reply>((resolve, reject) => s.timeout(5000).emit(event, payload, (err: Error | null, res: Reply) => (err ? reject(err) : resolve(res))));

const account = (t: TestClient) => ({ accountId: Buffer.from(t.client.identity.accountId), deviceId: t.client.identity.device.deviceId });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('connected devices get every stored envelope (2 gateways; no periodic check)', () => {
  let stack: TestStack;
  let db: DataSource;
  let redis: IORedis;
  const pool = new ClientPool(() => stack.origin);
  const raws: RawClient[] = [];
  const raw = async (url: string, token: string) => {
    const c = await rawClient(url, token);
    raws.push(c);
    return c;
  };

  beforeAll(async () => {
    // The periodic check is off here, so each test proves its own mechanism.
    stack = await TestStack.start({ instances: { gateway: 2, 'message-relay': 1 }, env: { DELIVERY_CHECK_INTERVAL_MS: '600000', RATE_LIMIT_SEND_PER_DEVICE_PER_SECOND: '2000' } });
    db = new DataSource({ type: 'postgres', url: TEST_DATABASE_URL });
    await db.initialize();
    redis = new IORedis(TEST_REDIS_URL);
  });

  afterAll(async () => {
    for (const c of raws) c.s.disconnect();
    await pool.closeAll();
    await stack.stop();
    await db.destroy();
    redis.disconnect();
  });

  async function queueRows(t: TestClient): Promise<number> {
    const rows: { n: number }[] = await db.query('SELECT count(*)::int AS n FROM envelopes WHERE recipient_account = $1 AND recipient_device = $2', [
      Buffer.from(t.client.identity.accountId),
      t.client.identity.device.deviceId,
    ]);
    return rows[0]!.n;
  }

  async function gatewayHolding(t: TestClient): Promise<TestInstance> {
    const [gw] = await stack.of('gateway')[0]!.svc.app.get(PresenceStore).lookup([deviceKey(account(t))]);
    return stack.of('gateway').find((g) => g.id === gw)!;
  }

  it('a newer connection keeps presence: an older socket refreshing cannot steal it back', async () => {
    const alice = await pool.registered();
    const bob = await pool.registered();
    await alice.client.connect();
    const token = await bob.client.getToken();
    const [gwA, gwB] = stack.of('gateway');
    const old = await raw(gwA!.svc.url, token);
    await waitFor(() => old.queueEmpty === 1, 15_000, 'old socket drained');
    const fresh = await raw(gwB!.svc.url, token);
    await waitFor(() => fresh.queueEmpty === 1, 15_000, 'new socket drained');
    // Gateway A still holds the old (say half-open) socket and runs its periodic refresh.
    await gwA!.svc.app.get(ConnectionsService).refreshPresence();

    const content = randomContent();
    await alice.client.send({ recipients: [toDevice(bob, content)] });
    await waitFor(() => fresh.received.length === 1, 15_000, 'delivery to the newest connection');
    expect(fresh.received[0]!.content).toBe(content);
    expect(old.received).toHaveLength(0);
    await waitFor(() => old.closed, 5000, 'the superseded socket to be closed');
    expect((await gatewayHolding(bob)).id).toBe(gwB!.id);
  });

  it('a device connected while the gateway lost its pub/sub connection gets the message without reconnecting', async () => {
    const alice = await pool.registered();
    const bob = await pool.registered();
    await bob.client.connect();
    await waitFor(() => bob.queueEmpty === 1, 15_000, 'bob drained');
    const holder = await gatewayHolding(bob);
    const other = stack.of('gateway').find((g) => g !== holder)!;
    // The sender sits on the other gateway so its "stored" answer is not the thing lost.
    const sender = await raw(other.svc.url, await alice.client.getToken());
    let connectedThroughout = true;
    const watch = setInterval(() => (connectedThroughout &&= bob.client.connected), 5);

    // Keep killing only this gateway's subscriber connection (found by its client name) until the
    // message is committed and published, so the publish finds nobody subscribed.
    const name = `${holder.id}:sub`;
    let killing = true;
    let kills = 0;
    const killer = (async () => {
      while (killing) {
        const list = (await redis.client('LIST')) as string;
        for (const line of list.split('\n')) {
          if (!line.includes(` name=${name} `)) continue;
          const id = /^id=(\d+) /.exec(line)?.[1];
          if (id) kills += Number(await redis.client('KILL', 'ID', id));
        }
        await sleep(1);
      }
    })();
    await waitFor(() => kills > 0, 5000, 'the subscriber to be killed');
    const content = randomContent();
    const stored = await call(sender.s, 'send', { clientMessageId: randomContent(16), recipients: [toDevice(bob, content)] });
    expect(stored.ok).toBe(true);
    await waitFor(async () => (await queueRows(bob)) === 1, 5000, 'the envelope committed');
    await sleep(300);
    killing = false;
    await killer;

    await waitReceived(bob, 1, 5000);
    clearInterval(watch);
    expect(bob.received[0]!.content).toBe(content);
    expect(connectedThroughout).toBe(true);
  });

  it('a relay job that committed but failed to publish publishes when it is retried', async () => {
    const alice = await pool.registered();
    const bob = await pool.registered();
    await alice.client.connect();
    await bob.client.connect();
    await waitFor(() => bob.queueEmpty === 1, 15_000, 'bob drained');
    const bus = stack.of('message-relay')[0]!.svc.app.get(Bus);
    const publishMany = bus.publishMany.bind(bus);
    let injected = 0;
    bus.publishMany = async (messages) => {
      if (injected === 0 && messages.some((m) => (m.message as { kind?: string }).kind === 'deliver')) {
        injected++;
        throw new Error('injected publish failure');
      }
      return publishMany(messages);
    };
    try {
      const content = randomContent();
      const result = await alice.client.send({ recipients: [toDevice(bob, content)] });
      expect(injected).toBe(1);
      expect(result.clientMessageId).toBeDefined();
      await waitReceived(bob, 1, 5000);
      expect(bob.received[0]!.content).toBe(content);
    } finally {
      bus.publishMany = publishMany;
    }
  });

  it('a client that never acks gets at most the window, however long it waits; after acking it gets the rest in order', async () => {
    const alice = await pool.registered();
    const bob = await pool.registered();
    await alice.client.connect();
    const queued = LIMITS.DELIVERY_WINDOW_MESSAGES + 200;
    for (let i = 0; i < queued; i += 100) {
      await Promise.all(Array.from({ length: Math.min(100, queued - i) }, () => alice.client.send({ recipients: [toDevice(bob, randomContent(64))] })));
    }
    const c = await raw(stack.origin, await bob.client.getToken());
    await waitFor(() => c.received.length >= LIMITS.DELIVERY_WINDOW_MESSAGES, 10_000, 'the first window');
    // Live sends while the window is full are not pushed (nor held in memory): they wait in Postgres.
    const live = 100;
    await Promise.all(Array.from({ length: live }, () => alice.client.send({ recipients: [toDevice(bob, randomContent(64))] })));
    await sleep(11_000);
    expect(c.received).toHaveLength(LIMITS.DELIVERY_WINDOW_MESSAGES);
    expect(c.queueEmpty).toBe(0);

    // Ack in client-sized batches; each ack makes room for more.
    let acked = 0;
    while (acked < queued + live) {
      await waitFor(() => c.received.length > acked, 10_000, `more after ${acked} acks`);
      const ids = c.received.slice(acked, acked + 200).map((m) => m.id);
      c.s.emit('ack', { ids });
      acked += ids.length;
      expect(c.received.length - acked).toBeLessThanOrEqual(LIMITS.DELIVERY_WINDOW_MESSAGES);
    }
    await waitFor(() => c.queueEmpty === 1, 10_000, 'queue-empty');
    expect(c.received).toHaveLength(queued + live);
    const ids = c.received.map((m) => BigInt(m.id));
    expect([...ids].sort((a, b) => (a < b ? -1 : 1))).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
    await waitFor(async () => (await queueRows(bob)) === 0, 10_000, 'acks to delete the rows');
  }, 90_000);

  it('bounds the bytes in flight too', async () => {
    const alice = await pool.registered();
    const bob = await pool.registered();
    await alice.client.connect();
    const big = 90 * 1024;
    const n = 40;
    for (let i = 0; i < n; i++) await alice.client.send({ recipients: [toDevice(bob, randomContent(big))] });
    const c = await raw(stack.origin, await bob.client.getToken());
    await waitFor(() => c.received.length > 0, 5000, 'the first page');
    await sleep(1500);
    const first = c.received.length;
    expect(first).toBeLessThan(n);
    expect(c.received.reduce((sum, m) => sum + m.content.length, 0)).toBeLessThanOrEqual(LIMITS.DELIVERY_WINDOW_BYTES);
    let acked = 0;
    while (acked < n) {
      await waitFor(() => c.received.length > acked, 5000, `more after ${acked} acks`);
      const ids = c.received.slice(acked).map((m) => m.id);
      c.s.emit('ack', { ids });
      acked += ids.length;
    }
    expect(c.received).toHaveLength(n);
  }, 60_000);

  it('limits socket ack and read events: ids per event and events per second, with stable codes on the ack', async () => {
    const bob = await pool.registered();
    const c = await raw(stack.origin, await bob.client.getToken());
    const tooMany = Array.from({ length: LIMITS.MAX_ACK_IDS + 1 }, (_, i) => String(i + 1));
    expect(await call(c.s, 'ack', { ids: tooMany })).toMatchObject({ ok: false, error: { code: 'VALIDATION_FAILED' } });
    expect(await call(c.s, 'read', { ids: tooMany })).toMatchObject({ ok: false, error: { code: 'VALIDATION_FAILED' } });

    const acks = await Promise.all(Array.from({ length: LIMITS.SOCKET_ACK_EVENTS_PER_SECOND * 3 }, (_, i) => call(c.s, 'ack', { ids: [String(i + 1)] })));
    expect(acks.filter((r) => !r.ok).every((r) => r.error?.code === 'RATE_LIMITED')).toBe(true);
    expect(acks.filter((r) => !r.ok).length).toBeGreaterThan(0);
    const reads = await Promise.all(Array.from({ length: LIMITS.SOCKET_READ_EVENTS_PER_SECOND * 3 }, (_, i) => call(c.s, 'read', { ids: [String(i + 1)] })));
    expect(reads.filter((r) => !r.ok).every((r) => r.error?.code === 'RATE_LIMITED')).toBe(true);
    expect(reads.filter((r) => !r.ok).length).toBeGreaterThan(0);

    await sleep(1100);
    expect(c.s.connected).toBe(true);
    expect(await call(c.s, 'ack', { ids: ['1'] })).toMatchObject({ ok: true });
    expect(await call(c.s, 'read', { ids: ['1'] })).toMatchObject({ ok: true });
  });

  it('refuses an unauthenticated connection at the handshake and never parses a large frame before the token is verified', async () => {
    await expect(rawClient(stack.origin, 'umb1.' + 'A'.repeat(43))).rejects.toMatchObject({ message: 'TOKEN_INVALID' });
    await expect(
      new Promise((resolve, reject) => {
        const s = io(stack.origin, { path: WS_PATH, transports: ['websocket'], reconnection: false });
        s.once('connect', () => resolve('connected'));
        s.once('connect_error', reject);
      }),
    ).rejects.toMatchObject({ message: 'UNAUTHENTICATED' });

    // A raw engine.io client: after the open packet it sends a 64 KiB connect packet.
    const url = `${stack.of('gateway')[0]!.svc.url.replace('http', 'ws')}${WS_PATH}/?EIO=4&transport=websocket`;
    const ws = new WebSocket(url);
    const frames: string[] = [];
    ws.on('message', (data) => frames.push(data.toString()));
    await new Promise((r) => ws.once('open', r));
    await waitFor(() => frames.length > 0, 5000, 'engine.io open packet');
    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    ws.send(`40${JSON.stringify({ token: 'x'.repeat(64 * 1024) })}`);
    expect(await closed).toBe(1009);
    expect(frames.some((f) => f.startsWith('44'))).toBe(false); // no connect_error: the packet was never parsed
  });

  it('closes a socket that sends a frame above what an authenticated send needs, and no other socket', async () => {
    const bob = await pool.registered();
    const carol = await pool.registered();
    const token = await bob.client.getToken();
    const victim = await raw(stack.origin, token);
    const bystander = await raw(stack.origin, await carol.client.getToken());
    victim.s.emit('send', { blob: 'x'.repeat(MAX_SOCKET_FRAME_BYTES + 1024) });
    await waitFor(() => victim.closed, 5000, 'the oversize socket to be closed');
    expect(await call(bystander.s, 'ack', { ids: ['1'] })).toMatchObject({ ok: true });
    // A send at the largest legal size still fits in a frame.
    const alice = await pool.registered();
    const sender = await raw(stack.origin, await alice.client.getToken());
    const per = Math.floor(LIMITS.MAX_SEND_TOTAL_BYTES / 44);
    const recipients = Array.from({ length: 44 }, () => toDevice(bob, randomContent(Math.min(per, LIMITS.MAX_ENVELOPE_CONTENT_BYTES))));
    const res = await call(sender.s, 'send', { clientMessageId: randomContent(16), recipients });
    expect(sender.s.connected).toBe(true);
    expect(res.error?.code).not.toBe('INTERNAL');
  });
});

describe('the periodic check re-drains what pub/sub never carried', () => {
  let stack: TestStack;
  const pool = new ClientPool(() => stack.origin);

  beforeAll(async () => {
    stack = await TestStack.start({ env: { DELIVERY_CHECK_INTERVAL_MS: '300' } });
  });

  afterAll(async () => {
    await pool.closeAll();
    await stack.stop();
  });

  it('an envelope stored without any publish reaches the connected device', async () => {
    const alice = await pool.registered();
    const bob = await pool.registered();
    await bob.client.connect();
    await waitFor(() => bob.queueEmpty === 1, 15_000, 'bob drained');
    // Stored straight into Postgres: nothing is published, as when a relay dies after its commit.
    const repo = stack.of('gateway')[0]!.svc.app.get(EnvelopeStoreRepository);
    const content = randomContent();
    await repo.storeBatch(
      [{
        sender: account(alice),
        clientMessageId: Buffer.from(randomContent(16), 'base64url'),
        expiresAt: 0,
        readTtlS: 0,
        recipients: [{ ...account(bob), type: 2, content: Buffer.from(content, 'base64url') }],
      }],
      Date.now(),
      3600_000,
    );
    await waitReceived(bob, 1, 5000);
    expect(bob.received[0]!.content).toBe(content);
    expect(bob.client.connected).toBe(true);
  });

  it('a full window whose envelopes were acknowledged over REST opens again (nothing still stored leaves it)', async () => {
    const alice = await pool.registered();
    const bob = await pool.registered();
    await alice.client.connect();
    const queued = LIMITS.DELIVERY_WINDOW_MESSAGES + 5;
    for (let i = 0; i < queued; i += 100) {
      await Promise.all(Array.from({ length: Math.min(100, queued - i) }, () => alice.client.send({ recipients: [toDevice(bob, randomContent(32))] })));
    }
    const token = await bob.client.getToken();
    const c = await rawClient(stack.origin, token);
    try {
      await waitFor(() => c.received.length === LIMITS.DELIVERY_WINDOW_MESSAGES, 15_000, 'the first window');
      await sleep(1000);
      expect(c.received).toHaveLength(LIMITS.DELIVERY_WINDOW_MESSAGES);
      const res = await fetch(`${stack.origin}/v1/messages/ack`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ ids: c.received.map((m) => m.id) }),
      });
      expect(res.status).toBe(200);
      await waitFor(() => c.received.length === queued, 15_000, 'the rest after the REST ack');
      await waitFor(() => c.queueEmpty === 1, 5000, 'queue-empty');
    } finally {
      c.s.disconnect();
    }
  }, 60_000);
});

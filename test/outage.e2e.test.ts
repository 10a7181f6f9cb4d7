import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import IORedis from 'ioredis';
import { io, type Socket } from 'socket.io-client';
import { ROUTES, WS_PATH } from '@umbra/protocol';
import { UmbraApiError } from '@umbra/sdk';
import { REDIS, type Redis } from '@umbra/server';
import { startEmbeddedS3 } from '../scripts/lib/embedded-s3';
import { TEST_DATABASE_URL, TestStack } from './support/harness';
import { ClientPool, randomContent, toDevice, type TestClient } from './support/clients';
import { CuttableProxy, PrivateRedis } from './support/faults';
import { rawRequest } from './support/raw-http';

/**
 * Infrastructure faults on a stack of its own: a private redis-server (filled up, then stopped), a
 * cuttable hop in front of Postgres and a private embedded S3 that is stopped. Every request that
 * meets the fault answers 503 UNAVAILABLE with Retry-After (never 500), and nothing acknowledged is lost.
 */
describe('outages answer 503 UNAVAILABLE with Retry-After, and lose nothing acknowledged', () => {
  let redis: PrivateRedis;
  let pg: CuttableProxy;
  let s3: { endpoint: string; close: () => Promise<void> } | undefined;
  let s3dir: string;
  let stack: TestStack;
  let admin: IORedis;
  const pool = new ClientPool(() => stack.origin);
  let alice: TestClient;
  let bob: TestClient;

  beforeAll(async () => {
    redis = await PrivateRedis.start();
    const db = new URL(TEST_DATABASE_URL);
    pg = await CuttableProxy.start({ host: db.hostname, port: Number(db.port || 5432) });
    db.host = `127.0.0.1:${pg.port}`;
    s3dir = await mkdtemp(path.join(tmpdir(), 'umbra-outage-s3-'));
    s3 = await startEmbeddedS3({ port: 0, host: '127.0.0.1', directory: s3dir, bucket: 'umbra-outage' });
    stack = await TestStack.start({
      instances: { 'media-upload': 1 },
      env: { REDIS_URL: redis.url, DATABASE_URL: db.toString(), S3_ENDPOINT: s3.endpoint, S3_BUCKET: 'umbra-outage', REDIS_COMMAND_TIMEOUT_MS: '1000' },
    });
    admin = new IORedis(redis.url, { maxRetriesPerRequest: 1 });
    admin.on('error', () => undefined);
    alice = await pool.registered();
    bob = await pool.registered();
  });

  afterAll(async () => {
    if (admin && admin.status !== 'end') admin.disconnect();
    await redis?.up().catch(() => undefined);
    await pool.closeAll();
    await stack?.stop();
    await redis?.stop();
    await pg?.down();
    await s3?.close().catch(() => undefined);
    await rm(s3dir, { recursive: true, force: true });
  });

  const send = (from: TestClient, to: TestClient, clientMessageId: string, content: string) =>
    from.client.api<{ duplicate: boolean }>('POST', ROUTES.sendMessage.path, { clientMessageId, recipients: [toDevice(to, content)] });

  function expectUnavailable(res: { status: number; headers: Record<string, unknown>; json: { error?: { code?: string; message?: string } } }) {
    if (res.status !== 503) console.log('NOT-503', stack.logs.lines.filter((l) => l.includes('unhandled')).slice(-2).join('\n'));
    expect({ status: res.status, code: res.json.error?.code }).toEqual({ status: 503, code: 'UNAVAILABLE' });
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
  }

  it('Postgres unreachable: 503, then normal service once it is back', async () => {
    const token = await alice.client.getToken();
    await pg.down();
    try {
      const res = await rawRequest(stack.origin, 'GET', ROUTES.keyCounts.path, { headers: { authorization: `Bearer ${token}` } });
      expectUnavailable(res);
    } finally {
      await pg.up();
    }
    const deadline = Date.now() + 10_000;
    let status = 0;
    while (status !== 200 && Date.now() < deadline) {
      status = (await rawRequest(stack.origin, 'GET', ROUTES.keyCounts.path, { headers: { authorization: `Bearer ${token}` } })).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(200);
  });

  it('S3 unreachable: completing an upload answers 503', async () => {
    const created = await alice.client.api<{ id: string }>('POST', ROUTES.createAttachment.path, { size: 10_000 });
    await s3!.close();
    s3 = undefined;
    const res = await rawRequest(stack.origin, 'POST', `/v1/attachments/${created.id}/complete`, { headers: { authorization: `Bearer ${await alice.client.getToken()}` } });
    expectUnavailable(res);
  });

  it('Redis full (noeviction, maxmemory reached): 503 instead of 500, and nothing acknowledged is lost', async () => {
    const socket: Socket = io(stack.origin, { path: WS_PATH, transports: ['websocket'], auth: { token: await alice.client.getToken() }, reconnection: false });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('connect_error', reject);
    });
    const stored = randomContent();
    const before = randomBytes(16).toString('base64url');
    expect((await send(alice, bob, before, stored)).duplicate).toBe(false);

    const used = Number(/used_memory:(\d+)/.exec(await admin.info('memory'))![1]);
    await admin.config('SET', 'maxmemory', String(used + 1024 * 1024));
    const junk = Buffer.alloc(64 * 1024, 1);
    let filled = 0;
    for (; ; filled++) {
      try {
        await admin.set(`junk:${filled}`, junk);
      } catch (err) {
        expect(String(err)).toMatch(/OOM/);
        break;
      }
    }
    // Keep it over the limit whatever is freed meanwhile (expired keys, finished jobs).
    await admin.config('SET', 'maxmemory', '1');

    // Unauthenticated routes whose rate-limit counters can no longer be written.
    expectUnavailable(await rawRequest(stack.origin, 'GET', ROUTES.powChallenge.path, { headers: { 'x-forwarded-for': '203.0.113.9' } }));
    expectUnavailable(await rawRequest(stack.origin, 'GET', ROUTES.authChallenge.path));
    // A send that cannot be queued is refused, not acknowledged.
    const during = randomBytes(16).toString('base64url');
    const refused = await send(alice, bob, during, randomContent()).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(UmbraApiError);
    expect(refused).toMatchObject({ status: 503, code: 'UNAVAILABLE' });
    // The socket's acknowledgement says the same.
    const ack = (await socket.timeout(5000).emitWithAck('send', { clientMessageId: randomBytes(16).toString('base64url'), recipients: [toDevice(bob)] })) as { ok: boolean; error?: { code: string; details?: { retryAfterS?: number } } };
    socket.disconnect();
    expect(ack).toMatchObject({ ok: false, error: { code: 'UNAVAILABLE' } });

    // Memory back: the same send goes through, and both messages are in bob's queue.
    for (let i = 0; i < filled; i += 100) await admin.del(...Array.from({ length: Math.min(100, filled - i) }, (_, k) => `junk:${i + k}`));
    await admin.config('SET', 'maxmemory', '0');
    const again = randomContent();
    const deadline = Date.now() + 10_000;
    let ok = false;
    while (!ok && Date.now() < deadline) {
      ok = await send(alice, bob, during, again).then(
        () => true,
        () => false,
      );
      if (!ok) await new Promise((r) => setTimeout(r, 200));
    }
    expect(ok).toBe(true);
    const page = await bob.client.api<{ messages: { content: string }[] }>('GET', `${ROUTES.fetchMessages.path}?limit=100`);
    const contents = page.messages.map((m) => m.content);
    expect(contents).toContain(stored);
    expect(contents).toContain(again);
  });

  it('Redis stopped: 503 within the command timeout, and memory is not spent queueing commands', async () => {
    // The request path is under test; a BullMQ worker that lost Redis does not close until a grace
    // timeout (the relay's SIGTERM path bounds it), which would only slow this file's teardown.
    for (const relay of stack.of('message-relay')) await stack.stopInstance(relay);
    admin.disconnect();
    await redis.down();
    const queued = (r: Redis) => (r as unknown as { offlineQueue: { length: number } }).offlineQueue.length;
    const started = Date.now();
    const pending = Promise.all(Array.from({ length: 20 }, () => rawRequest(stack.origin, 'GET', ROUTES.authChallenge.path)));
    // While they are in flight, nothing waits in ioredis's offline queue for Redis to come back.
    let most = 0;
    const sampler = setInterval(() => (most = Math.max(most, ...stack.instances.map((i) => queued(i.svc.app.get<symbol, Redis>(REDIS))))), 5);
    const results = await pending;
    clearInterval(sampler);
    for (const res of results) expectUnavailable(res);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(most).toBe(0);
  });
});

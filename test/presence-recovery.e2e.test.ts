import IORedis from 'ioredis';
import { PresenceStore, deviceKey } from '@umbra/server';
import { TestStack, TEST_REDIS_URL, waitFor } from './support/harness';
import { ClientPool, randomContent, toDevice, waitReceived, type TestClient } from './support/clients';

const account = (t: TestClient) => ({ accountId: Buffer.from(t.client.identity.accountId), deviceId: t.client.identity.device.deviceId });

/** What FLUSHALL looks like to one stack: every key under its prefix gone (the shared Redis is never flushed). */
async function loseStackData(redis: IORedis, prefix: string): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) deleted += await redis.del(...keys);
  } while (cursor !== '0');
  return deleted;
}

describe('presence survives Redis losing its data (no periodic check)', () => {
  let stack: TestStack;
  let redis: IORedis;
  const pool = new ClientPool(() => stack.origin);

  beforeAll(async () => {
    // The periodic check is off, so only the presence recovery can bring the message in time.
    stack = await TestStack.start({ instances: { gateway: 2, 'message-relay': 1 }, env: { DELIVERY_CHECK_INTERVAL_MS: '600000' } });
    redis = new IORedis(TEST_REDIS_URL);
  });

  afterAll(async () => {
    await pool.closeAll();
    await stack.stop();
    redis.disconnect();
  });

  it('a connected device gets a message sent right after the data loss within ~2 s, without reconnecting', async () => {
    const alice = await pool.registered();
    const bob = await pool.registered();
    const carol = await pool.registered();
    await alice.client.connect();
    await bob.client.connect();
    await carol.client.connect();
    await waitFor(() => bob.queueEmpty === 1 && carol.queueEmpty === 1, 15_000, 'bob and carol drained');
    const store = stack.of('gateway')[0]!.svc.app.get(PresenceStore);
    expect((await store.lookup([deviceKey(account(bob)), deviceKey(account(carol))])).every((g) => g !== null)).toBe(true);
    let connectedThroughout = true;
    const watch = setInterval(() => (connectedThroughout &&= bob.client.connected && carol.client.connected), 5);

    expect(await loseStackData(redis, stack.env.REDIS_PREFIX!)).toBeGreaterThan(0);
    expect(await store.lookup([deviceKey(account(bob))])).toEqual([null]);
    const lostAt = Date.now();
    const toBob = randomContent();
    await alice.client.send({ recipients: [toDevice(bob, toBob)] });
    await waitReceived(bob, 1, 2500);
    const bobLatency = Date.now() - lostAt;

    // Presence is back for every connected device, so a later message is pushed live.
    await waitFor(async () => (await store.lookup([deviceKey(account(carol))]))[0] !== null, 2000, 'carol routable again');
    const toCarol = randomContent();
    const sentAt = Date.now();
    await alice.client.send({ recipients: [toDevice(carol, toCarol)] });
    await waitReceived(carol, 1, 1500);
    clearInterval(watch);

    expect(bob.received[0]!.content).toBe(toBob);
    expect(carol.received[0]!.content).toBe(toCarol);
    expect(bobLatency).toBeLessThan(2500);
    expect(Date.now() - sentAt).toBeLessThan(1500);
    expect(connectedThroughout).toBe(true);
  });
});

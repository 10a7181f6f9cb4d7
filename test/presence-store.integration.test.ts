import IORedis from 'ioredis';
import { randomBytes } from 'node:crypto';
import { PresenceStore } from '@umbra/server';
import { TEST_REDIS_URL } from './support/harness';

describe('PresenceStore: the newest connection owns a device (real Redis)', () => {
  let redis: IORedis;
  let store: PresenceStore;
  const device = 'acct:1';

  beforeAll(() => {
    redis = new IORedis(TEST_REDIS_URL);
    store = new PresenceStore(redis, `t${randomBytes(5).toString('hex')}`, 5);
  });

  afterAll(() => redis.disconnect());

  it('a refresh or clear by an older connection neither steals nor deletes the newer claim', async () => {
    await store.claim({ deviceKey: device, connectionId: 'old' }, 'gw-a');
    await store.claim({ deviceKey: device, connectionId: 'new' }, 'gw-b');
    expect(await store.refresh([{ deviceKey: device, connectionId: 'old' }], 'gw-a')).toEqual([{ deviceKey: device, connectionId: 'old' }]);
    expect(await store.lookup([device])).toEqual(['gw-b']);
    await store.clear({ deviceKey: device, connectionId: 'old' }, 'gw-a');
    expect(await store.lookup([device])).toEqual(['gw-b']);
    // The same connection id on another gateway is not the owner either.
    expect(await store.refresh([{ deviceKey: device, connectionId: 'new' }], 'gw-a')).toHaveLength(1);
    expect(await store.refresh([{ deviceKey: device, connectionId: 'new' }], 'gw-b')).toEqual([]);
    await store.clear({ deviceKey: device, connectionId: 'new' }, 'gw-b');
    expect(await store.lookup([device])).toEqual([null]);
  });

  it('a refresh re-claims an entry that expired (nobody else holds the device)', async () => {
    await store.claim({ deviceKey: 'acct:2', connectionId: 'c1' }, 'gw-a');
    await redis.del(`${(store as unknown as { prefix: string }).prefix}:presence:acct:2`);
    expect(await store.refresh([{ deviceKey: 'acct:2', connectionId: 'c1' }], 'gw-a')).toEqual([]);
    expect(await store.lookup(['acct:2'])).toEqual(['gw-a']);
    const ttl = await redis.ttl(`${(store as unknown as { prefix: string }).prefix}:presence:acct:2`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(5);
  });

  it('routes items to the owning gateway only', async () => {
    await store.claim({ deviceKey: 'acct:3', connectionId: 'x' }, 'gw-c');
    const routed = await store.route([{ to: 'acct:3' }, { to: 'acct:offline' }], (i) => i.to);
    expect([...routed.entries()]).toEqual([['gw-c', [{ to: 'acct:3' }]]]);
  });
});

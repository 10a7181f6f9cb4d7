import { randomBytes } from 'node:crypto';
import IORedis from 'ioredis';
import { RateLimiter, createRedis } from '@umbra/server';
import { TEST_REDIS_URL } from './support/harness';

/** The limiter against the real Redis, under a prefix of its own (removed at the end). */
describe('RateLimiter: the keys an unauthenticated client can create are bounded', () => {
  const prefix = `rl${randomBytes(5).toString('hex')}`;
  const redis = createRedis(TEST_REDIS_URL, 'commands', 'rate-limiter-test');
  const admin = new IORedis(TEST_REDIS_URL);
  const limited: string[] = [];
  const limiter = new RateLimiter(redis, prefix, (b) => limited.push(b), 3);
  const keys = async () => {
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await admin.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      found.push(...batch);
    } while (cursor !== '0');
    return found;
  };

  afterAll(async () => {
    const left = await keys();
    if (left.length) await admin.del(...left);
    redis.disconnect();
    admin.disconnect();
  });

  it('refuses new client addresses past the per-window cap, keeps counting the known ones, and never caps account ids', async () => {
    for (const ip of ['198.51.100.1', '198.51.100.2', '2001:db8:1:2::/64']) await limiter.hit('register-ip', ip, 10, 60_000);
    await expect(limiter.hit('register-ip', '198.51.100.4', 10, 60_000)).rejects.toMatchObject({ code: 'RATE_LIMITED', details: { retryAfterS: expect.any(Number) } });
    expect(await limiter.tryHit('register-ip', '203.0.113.5', 10, 60_000)).toBe(false);
    // Addresses already counted this window go on as before.
    await limiter.hit('register-ip', '198.51.100.1', 10, 60_000);
    // Another limit has its own census; ids that are not addresses are not capped.
    await limiter.hit('challenge-ip', '198.51.100.4', 10, 60_000);
    for (let i = 0; i < 10; i++) await limiter.hit('lookup', randomBytes(32).toString('hex'), 10, 60_000);
    expect(limited).toEqual(['register-ip']);
  });

  it('creates only expiring keys, at most cap + 1 per limit and window', async () => {
    for (let i = 0; i < 50; i++) await limiter.tryHit('pow-ip', `192.0.2.${i}`, 5, 60_000);
    const mine = (await keys()).filter((k) => k.includes('{pow-ip}'));
    expect(mine.length).toBeLessThanOrEqual(3 + 1);
    for (const k of mine) {
      const ttl = await admin.pttl(k);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(60_000);
    }
  });
});

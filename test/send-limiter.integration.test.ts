import { randomBytes } from 'node:crypto';
import IORedis from 'ioredis';
import { Metrics, createRedis, type AppConfig, type AuthContext, type Redis } from '@umbra/server';
import { SEND_LEASE_MS, SendLimiter } from '../services/gateway/src/messages/send.limiter';
import { TEST_REDIS_URL } from './support/harness';

type Counted = Redis & { umbraSendTake: (...args: unknown[]) => Promise<unknown> };

/** A gateway's limiter on its own Redis connection, counting its round trips to the shared bucket. */
function gateway(prefix: string, rate: number): { limiter: SendLimiter; calls: () => number; close: () => void } {
  const redis = createRedis(TEST_REDIS_URL, 'commands', 'send-limiter-test');
  const config = { REDIS_PREFIX: prefix, RATE_LIMIT_SEND_PER_DEVICE_PER_SECOND: rate } as AppConfig;
  // The first limiter defines the script command on the client; the one under test sees it through a counter.
  new SendLimiter(config, redis, new Metrics('gateway', false));
  let calls = 0;
  const counted = new Proxy(redis, {
    get: (target, prop) =>
      prop === 'umbraSendTake'
        ? (...args: unknown[]) => {
            calls++;
            return (target as Counted).umbraSendTake(...args);
          }
        : Reflect.get(target, prop, target),
  });
  const limiter = new SendLimiter(config, counted, new Metrics('gateway', false));
  return { limiter, calls: () => calls, close: () => redis.disconnect() };
}

const device = (): AuthContext => ({ accountId: randomBytes(32), accountIdText: 'a', deviceId: 1, expiresAt: Date.now() + 3_600_000 });

async function attempt(l: SendLimiter, auth: AuthContext): Promise<boolean> {
  try {
    await l.take(auth);
    return true;
  } catch (err) {
    expect(err).toMatchObject({ code: 'RATE_LIMITED', details: { retryAfterS: expect.any(Number) } });
    return false;
  }
}

/** The send limit against the real Redis, two gateways sharing one bucket per device. */
describe('SendLimiter: one bucket per device in Redis, spent through short local leases', () => {
  const prefix = `sl${randomBytes(5).toString('hex')}`;
  const admin = new IORedis(TEST_REDIS_URL);
  const opened: { close: () => void }[] = [];
  const two = (rate: number) => {
    const gws = [gateway(prefix, rate), gateway(prefix, rate)];
    opened.push(...gws);
    return gws;
  };

  afterAll(async () => {
    const keys = await admin.keys(`${prefix}:*`);
    if (keys.length) await admin.del(...keys);
    for (const g of opened) g.close();
    admin.disconnect();
  });

  it('holds the limit across two gateways while most sends take no Redis round trip', async () => {
    const rate = 160; // burst 320, leases of 20
    const [a, b] = two(rate);
    const auth = device();
    const started = Date.now();
    let ok = 0;
    for (let i = 0; i < 300; i++) if (await attempt(i % 2 ? a!.limiter : b!.limiter, auth)) ok++;
    // Within the burst every send passes, at about one round trip per lease.
    expect(ok).toBe(300);
    expect(a!.calls() + b!.calls()).toBeLessThanOrEqual(40);
    let refused = 0;
    for (let i = 0; refused < 50 && i < 5000; i++) {
      if (await attempt(i % 2 ? a!.limiter : b!.limiter, auth)) ok++;
      else refused++;
    }
    const elapsedS = (Date.now() - started) / 1000;
    expect(refused).toBe(50);
    // The shared bucket gave out no more than its burst and refill; each gateway holds at most one lease of it.
    expect(ok).toBeLessThanOrEqual(2 * rate + Math.ceil(elapsedS * rate) + 2 * 20);
    expect(ok).toBeGreaterThanOrEqual(2 * rate);
  });

  it('takes one token at a time under small limits, and forfeits a lease once it is SEND_LEASE_MS old', async () => {
    const [small] = two(5); // burst 10: below 32, no leasing
    const auth = device();
    const results = [];
    for (let i = 0; i < 12; i++) results.push(await attempt(small!.limiter, auth));
    expect(small!.calls()).toBe(12);
    expect(results.filter(Boolean).length).toBeGreaterThanOrEqual(10);
    expect(results.filter(Boolean).length).toBeLessThanOrEqual(11);

    const [g] = two(160);
    const other = device();
    await g!.limiter.take(other);
    await g!.limiter.take(other);
    expect(g!.calls()).toBe(1);
    await new Promise((r) => setTimeout(r, SEND_LEASE_MS + 100));
    await g!.limiter.take(other);
    expect(g!.calls()).toBe(2);
    // The forfeited 18 tokens stayed out of the bucket: 320 − 20 − 20, plus the refill since.
    const [tokens] = await admin.hmget(`${prefix}:rl:send:${other.accountId.toString('hex')}:1`, 'tokens');
    expect(Number(tokens)).toBeLessThan(2 * 160 - 40 + 160 * 1.5);
  });
});

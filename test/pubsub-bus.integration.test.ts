import { randomBytes } from 'node:crypto';
import { NodeBus, channelOf, createRedis, type Redis } from '@umbra/server';
import { TEST_REDIS_URL, waitFor } from './support/harness';

/**
 * The Bus owns its subscriptions: subscribed only once ready, again on every reconnect, and an
 * audit that finds a subscription Redis no longer holds and restores it. Without the audit a
 * gateway that came up missing its own channel never heard a "stored" answer (the liveness stall).
 */
describe('Bus: every subscription held, or restored (real Redis)', () => {
  const connections: Redis[] = [];
  const buses: NodeBus[] = [];
  const errors: string[] = [];
  const prefix = `bus${randomBytes(4).toString('hex')}`;
  const channels = ['a', 'b', 'c'].map((c) => channelOf<unknown>(`${prefix}:${c}`));

  const open = (auditIntervalMs = 0) => {
    const pub = createRedis(TEST_REDIS_URL, 'commands', `${prefix}:pub`);
    const sub = createRedis(TEST_REDIS_URL, 'subscriber', `${prefix}:sub`);
    connections.push(pub, sub);
    const repaired: number[] = [];
    const bus = new NodeBus(pub, sub, (err, channel) => errors.push(`${channel}: ${String(err)}`), { auditIntervalMs, onRepaired: (n) => repaired.push(n) });
    buses.push(bus);
    const received = new Map<string, unknown[]>(channels.map((c) => [c, []]));
    return { pub, sub, bus, repaired, received };
  };

  const subscribeAll = async (s: ReturnType<typeof open>) => {
    for (const c of channels) await s.bus.subscribe<unknown>(c, (m) => s.received.get(c)!.push(m));
  };

  const heldInRedis = async (admin: Redis, name: string): Promise<number> => {
    const list = String(await admin.call('CLIENT', 'LIST', 'TYPE', 'pubsub'));
    const line = list.split('\n').find((l) => l.includes(` name=${name} `));
    return Number(/\bsub=(\d+)/.exec(line ?? '')?.[1] ?? 0);
  };

  afterAll(async () => {
    for (const b of buses) await b.unsubscribeAll();
    for (const c of connections) c.disconnect();
  });

  it('subscriptions made before the connection is ready are all live once it is', async () => {
    const s = open();
    expect(s.sub.status).not.toBe('ready');
    await subscribeAll(s);
    for (const [i, c] of channels.entries()) await s.bus.publish(c, { n: i });
    await waitFor(() => channels.every((c) => s.received.get(c)!.length === 1), 5000, 'a message on every channel');
    expect(await heldInRedis(s.pub, `${prefix}:sub`)).toBe(3);
  });

  it('the audit finds a subscription Redis lost, subscribes again and tells the listeners', async () => {
    const s = open();
    await subscribeAll(s);
    let resubscribed = 0;
    s.bus.onResubscribed(() => resubscribed++);
    // Behind the Bus's back, as the ioredis race did: the connection drops one of its channels.
    await s.sub.unsubscribe(channels[1]!);
    await s.bus.publish(channels[1]!, { lost: true });
    await new Promise((r) => setTimeout(r, 100));
    expect(s.received.get(channels[1]!)).toEqual([]);

    expect(await s.bus.auditSubscriptions()).toBe(1);
    expect(s.repaired).toEqual([1]);
    expect(resubscribed).toBe(1);
    expect(s.bus.isComplete()).toBe(true);
    await s.bus.publish(channels[1]!, { back: true });
    await waitFor(() => s.received.get(channels[1]!)!.length === 1, 5000, 'the restored channel to deliver');
    expect(s.received.get(channels[1]!)).toEqual([{ back: true }]);
    // Nothing missing: the audit is quiet.
    expect(await s.bus.auditSubscriptions()).toBe(0);
    expect(resubscribed).toBe(1);
  });

  it('on its own timer: a lost subscription comes back without anyone asking', async () => {
    const s = open(200);
    await subscribeAll(s);
    await s.sub.unsubscribe(channels[0]!, channels[2]!);
    await waitFor(() => s.repaired.length > 0, 5000, 'the periodic audit');
    await waitFor(async () => (await heldInRedis(s.pub, `${prefix}:sub`)) === 3, 5000, 'all three subscriptions held again');
  });

  it('after the server kills the subscriber connection, every channel is subscribed again and listeners re-read', async () => {
    const s = open();
    await subscribeAll(s);
    let resubscribed = 0;
    s.bus.onResubscribed(() => resubscribed++);
    const list = String(await s.pub.call('CLIENT', 'LIST', 'TYPE', 'pubsub'));
    const mine = list.split('\n').filter((l) => l.includes(`${prefix}:sub`));
    // Only this Bus's connection: the last one opened (other tests' stacks share this Redis).
    const id = mine.map((l) => Number(/\bid=(\d+)/.exec(l)?.[1] ?? 0)).sort((a, b) => b - a)[0];
    expect(id).toBeDefined();
    await s.pub.client('KILL', 'ID', String(id));
    await waitFor(() => resubscribed >= 1, 10_000, 'the Bus to re-subscribe after the reconnect');
    for (const c of channels) await s.bus.publish(c, { again: c });
    await waitFor(() => channels.every((c) => s.received.get(c)!.some((m) => (m as { again?: string }).again === c)), 5000, 'every channel live again');
    expect(errors).toEqual([]);
  });
});

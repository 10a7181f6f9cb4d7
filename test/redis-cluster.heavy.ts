import { randomBytes } from 'node:crypto';
import { DataSource } from 'typeorm';
import { Cluster } from 'ioredis';
import pg from 'pg';
import {
  Bus,
  ChallengeStore,
  Channels,
  PresenceStore,
  QueueRegistry,
  RateLimiter,
  ShardedBus,
  createRedis,
  createRedisClient,
  keySlot,
  migrateDatabase,
  nodeUrl,
  parseClusterNodes,
  type RedisTarget,
  Jobs,
  Queues,
  channelOf,
  type Channel,
} from '@umbra/server';
import { ClientPool, randomContent, toDevice } from './support/clients';
import { newAccount, type E2eeDevice } from './support/devices';
import { TEST_DATABASE_URL, TestStack, waitFor } from './support/harness';
import { RedisCluster } from './support/redis-cluster';
import { History } from './chaos/support/history';
import { LoadDriver } from './chaos/support/load';

/**
 * Issue 17, Redis Cluster: a private cluster of 3 masters and 3 replicas (Debian redis-server ≥ 7,
 * missing binaries fail the suite) under the pieces that touch Redis (sharded pub/sub, presence,
 * rate limits, BullMQ with a hash-tag prefix), then the whole stack with REDIS_CLUSTER_NODES and a
 * REDIS_URL nothing answers on: E2EE 1:1 and group, offline drain, acks, REST; and finally a master
 * killed (SIGKILL) mid-traffic: after the replica's failover every message whose send was answered
 * "stored" reaches its device exactly once: first the master of the queues' slot, then (the first
 * one back as a replica) the master holding a gateway's deliver channel. The stack gets a database
 * of its own (other suites' sweepers on the shared test database cannot touch its tokens).
 * Heavy: UMBRA_HEAVY=1.
 */
const heavy = process.env.UMBRA_HEAVY === '1' ? describe : describe.skip;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

heavy('Redis Cluster (3 masters, 3 replicas)', () => {
  let cluster: RedisCluster;
  let target: RedisTarget;

  beforeAll(async () => {
    cluster = await RedisCluster.start();
    target = { url: 'redis://127.0.0.1:1', clusterNodes: parseClusterNodes(cluster.nodesEnv) };
  }, 90_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  describe('the pieces on a cluster', () => {
    let redis: Cluster;
    const prefix = `c${randomBytes(4).toString('hex')}`;

    beforeAll(async () => {
      redis = createRedisClient(target, 'commands', 'cluster-test') as Cluster;
      await waitFor(() => redis.status === 'ready', 10_000, 'the cluster client');
    });

    afterAll(() => redis?.disconnect());

    it('computes the slot Redis does, hash tags included', async () => {
      const keys = ['foo', 'hello', '{user1000}.following', '{umbra}:bull:relay:wait', 'foo{}{bar}', 'foo{{bar}}zap', `${prefix}:deliver:gateway-1`, 'ü{ñ}'];
      for (const k of keys) expect(`${k} ${keySlot(k)}`).toBe(`${k} ${await redis.cluster('KEYSLOT', k)}`);
    });

    it('sharded pub/sub: each channel held on the master of its slot, audited, restored after its connection is killed', async () => {
      const masters = (await cluster.nodes()).filter((n) => n.role === 'master');
      const channels: Channel<unknown>[] = [];
      const owners = new Set<number>();
      for (let i = 0; owners.size < masters.length; i++) {
        const c = Channels.deliver(prefix, `gw-${i}`);
        const owner = await cluster.masterOf(keySlot(c));
        if (owners.has(owner)) continue;
        owners.add(owner);
        channels.push(channelOf<unknown>(c));
      }
      const errors: string[] = [];
      const bus: Bus = new ShardedBus(redis, (node) => createRedis(nodeUrl(target.url, node), 'subscriber', 'cluster-test:sub'), (err, ch) => errors.push(`${ch}: ${String(err)}`), { auditIntervalMs: 0 });
      const got = new Map<string, unknown[]>(channels.map((c) => [c, []]));
      await Promise.all(channels.map((c) => bus.subscribe(c, (m) => got.get(c)!.push(m))));
      for (const c of channels) {
        const owner = await cluster.masterOf(keySlot(c));
        for (const n of masters) expect(`${n.port} ${(await cluster.cmd(n.port, 'PUBSUB', 'SHARDCHANNELS', c)).includes(c)}`).toBe(`${n.port} ${n.port === owner}`);
      }
      for (const [i, c] of channels.entries()) await bus.publish(c, { n: i });
      await bus.publishMany(channels.flatMap((c) => [{ channel: c, message: { many: 1 } }, { channel: c, message: { many: 2 } }]));
      await waitFor(() => [...got.values()].every((l) => l.length === 3), 5000, 'every message on every shard');
      expect([...got.values()].map((l) => l.slice(1))).toEqual(channels.map(() => [{ many: 1 }, { many: 2 }]));
      expect(await bus.auditSubscriptions()).toBe(0);
      expect(bus.isComplete()).toBe(true);

      // The subscriber connection of one channel dies: it reconnects, subscribes again, and listeners hear of it.
      let resubscribed = 0;
      bus.onResubscribed(() => resubscribed++);
      const victim = channels[0]!;
      const port = await cluster.masterOf(keySlot(victim));
      const list = await cluster.cmd(port, 'CLIENT', 'LIST');
      const id = /id=(\d+) .*name=cluster-test:sub .*ssub=1/.exec(list)?.[1];
      expect(id).toBeDefined();
      await cluster.cmd(port, 'CLIENT', 'KILL', 'ID', id!);
      await waitFor(() => resubscribed >= 1 && bus.isComplete(), 10_000, 'the channel subscribed again');
      await bus.publish(victim, { back: true });
      await waitFor(() => got.get(victim)!.some((m) => (m as { back?: boolean }).back), 5000, 'a message after the restore');
      expect(await bus.auditSubscriptions()).toBe(0);
      await bus.unsubscribeAll();
      expect(errors).toEqual([]);
    });

    it('presence refresh and lookup over keys in many slots; rate limits; challenges', async () => {
      const store = new PresenceStore(redis, prefix, 30);
      const claims = Array.from({ length: 300 }, (_, i) => ({ deviceKey: `acct${i}:1`, connectionId: `c${i}` }));
      for (const c of claims.slice(0, 150)) await store.claim(c, 'gw-a');
      expect(await store.refresh(claims, 'gw-a')).toEqual([]);
      await store.claim({ deviceKey: 'acct7:1', connectionId: 'newer' }, 'gw-b');
      expect(await store.refresh(claims.slice(0, 10), 'gw-a')).toEqual([claims[7]]);
      const owners = await store.lookup([...claims.map((c) => c.deviceKey), 'nobody:1']);
      expect(owners.filter((o) => o === 'gw-a')).toHaveLength(299);
      expect(owners[7]).toBe('gw-b');
      expect(owners[300]).toBeNull();
      const routed = await store.route(claims.slice(0, 20), (c) => c.deviceKey);
      expect(routed.get('gw-b')).toEqual([claims[7]]);
      expect(routed.get('gw-a')).toHaveLength(19);

      const limiter = new RateLimiter(redis, prefix, () => undefined, 2);
      expect(await limiter.tryHit('register', 'ip:10.0.0.1', 2, 60_000)).toBe(true);
      expect(await limiter.tryHit('register', 'ip:10.0.0.1', 2, 60_000)).toBe(true);
      expect(await limiter.tryHit('register', 'ip:10.0.0.1', 2, 60_000)).toBe(false);

      const challenges = new ChallengeStore(redis, prefix);
      const nonce = await challenges.issue('auth', 60, 'v');
      expect(await challenges.consume('auth', nonce)).toBe('v');
      expect(await challenges.consume('auth', nonce)).toBeNull();
    });

    it('BullMQ runs with a hash-tag prefix, every key of it in one slot', async () => {
      const registry = new QueueRegistry(target, prefix);
      expect(registry.bullPrefix).toBe(`{${prefix}}:bull`);
      const done: unknown[] = [];
      registry.worker(Queues.expiry, { [Jobs.expireMessage]: async (job) => done.push(job.data) });
      for (let i = 0; i < 20; i++) await registry.add(Queues.expiry, Jobs.expireMessage, { a: 'probe', d: 1, c: 'probe', dueAt: i }, { jobId: `p${i}` });
      await waitFor(() => done.length === 20, 15_000, 'the jobs');
      const port = await cluster.masterOf(keySlot(prefix));
      const keys = (await cluster.cmd(port, 'KEYS', `{${prefix}}:bull:*`)).split('\n').filter(Boolean);
      expect(keys.length).toBeGreaterThan(0);
      await registry.close();
    });
  });

  describe('the stack on a cluster', () => {
    let stack: TestStack;
    let db: DataSource;
    const dbName = `umbra_cluster_${randomBytes(4).toString('hex')}`;
    const databaseUrl = Object.assign(new URL(TEST_DATABASE_URL), { pathname: `/${dbName}` }).toString();
    const adminSql = async (sql: string) => {
      const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
      await admin.connect();
      try {
        await admin.query(sql);
      } finally {
        await admin.end();
      }
    };
    const pool = new ClientPool(() => stack.origin);
    const devices: E2eeDevice[] = [];

    beforeAll(async () => {
      await adminSql(`CREATE DATABASE ${dbName}`);
      await migrateDatabase(databaseUrl);
      stack = await TestStack.start({
        instances: { gateway: 2, 'message-relay': 2, 'expiry-worker': 1 },
        // Nothing answers on REDIS_URL: every Redis command of the stack has to go to the cluster.
        env: { DATABASE_URL: databaseUrl, REDIS_CLUSTER_NODES: cluster.nodesEnv, REDIS_URL: 'redis://127.0.0.1:1', RATE_LIMIT_SEND_PER_DEVICE_PER_SECOND: '100000', RATE_LIMIT_REGISTER_PER_IP_PER_HOUR: '1000', LOG_LEVEL: 'warn' },
      });
      db = new DataSource({ type: 'postgres', url: databaseUrl, extra: { max: 2 } });
      await db.initialize();
    }, 120_000);

    afterAll(async () => {
      const t0 = Date.now();
      for (const d of devices) await d.client.close().catch(() => undefined);
      await pool.closeAll();
      const t1 = Date.now();
      await stack?.stop();
      const t2 = Date.now();
      await db?.destroy();
      await adminSql(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
      process.stdout.write(`${JSON.stringify({ teardownMs: { clients: t1 - t0, stack: t2 - t1, database: Date.now() - t2 } })}\n`);
    }, 120_000);

    const queueRows = async (accountId: Uint8Array, deviceId: number): Promise<number> =>
      ((await db.query('SELECT count(*)::int AS n FROM envelopes WHERE recipient_account = $1 AND recipient_device = $2', [Buffer.from(accountId), deviceId])) as { n: number }[])[0]!.n;

    it('each gateway holds its deliver channel on the master of the channel slot only', async () => {
      const masters = (await cluster.nodes()).filter((n) => n.role === 'master');
      for (const gw of stack.of('gateway')) {
        const channel = Channels.deliver(stack.env.REDIS_PREFIX!, gw.id);
        const owner = await cluster.masterOf(keySlot(channel));
        for (const n of masters) expect(`${gw.id} ${n.port} ${(await cluster.cmd(n.port, 'PUBSUB', 'SHARDCHANNELS', channel)).includes(channel)}`).toBe(`${gw.id} ${n.port} ${n.port === owner}`);
      }
      for (const inst of stack.instances) expect(`${inst.id} ${(await (await fetch(`${inst.svc.url}/readyz`)).text())}`).toMatch(/"status":"ok"/);
    });

    it('E2EE 1:1 and group messages, offline drain in order, acks and REST', async () => {
      const alice = await newAccount(stack.origin);
      const bob = await newAccount(stack.origin);
      const carol = await newAccount(stack.origin);
      devices.push(alice, bob, carol);
      await alice.messenger.sendText(bob.client.identity.accountIdText, 'hello over the cluster');
      await waitFor(() => bob.inbox.some((m) => m.content.text === 'hello over the cluster'), 15_000, 'the 1:1 message');
      const gid = await alice.messenger.createGroup([bob.client.identity.accountIdText, carol.client.identity.accountIdText]);
      await waitFor(async () => !!(await bob.messenger.group(gid)) && !!(await carol.messenger.group(gid)), 15_000, 'the group known to its members');
      await alice.messenger.sendGroupText(gid, 'group hello');
      const inGroup = (d: E2eeDevice) => d.inbox.some((m) => m.content.gid === gid && m.content.text === 'group hello');
      await waitFor(() => inGroup(bob) && inGroup(carol), 15_000, 'the group message');
      for (const d of devices) expect(d.errors).toEqual([]);

      const sender = await pool.registered();
      const offline = await pool.registered();
      await sender.client.connect();
      const contents = Array.from({ length: 300 }, () => randomContent(64));
      for (let i = 0; i < contents.length; i += 50) await Promise.all(contents.slice(i, i + 50).map((c) => sender.client.send({ recipients: [toDevice(offline, c)] })));
      const id = offline.client.identity;
      expect(await queueRows(id.accountId, id.device.deviceId)).toBe(300);
      await offline.client.connect();
      await waitFor(() => offline.queueEmpty === 1, 30_000, 'queue-empty');
      expect(offline.received.length).toBe(300);
      const ids = offline.received.map((m) => Number(m.id));
      expect([...ids].sort((a, b) => a - b)).toEqual(ids);
      expect(new Set(offline.received.map((m) => m.content))).toEqual(new Set(contents));
      await offline.client.settle();
      await waitFor(async () => (await queueRows(id.accountId, id.device.deviceId)) === 0, 15_000, 'acks');

      const rest = await pool.registered();
      const request = { clientMessageId: randomContent(16), recipients: [toDevice(rest)] };
      expect((await sender.client.send(request)).duplicate).toBe(false);
      expect((await sender.client.send(request)).duplicate).toBe(true);
      const page = await rest.client.fetchMessages();
      expect(page.messages).toHaveLength(1);
      await rest.client.api('POST', '/v1/messages/ack', { ids: [page.messages[0]!.id] });
      await waitFor(async () => (await queueRows(rest.client.identity.accountId, rest.client.identity.device.deviceId)) === 0, 5000, 'the REST ack');
    });

    const allReady = () =>
      waitFor(async () => (await Promise.all(stack.instances.map(async (i) => (await fetch(`${i.svc.url}/readyz`)).ok))).every(Boolean), 30_000, 'every service ready');

    /** SDK devices send to each other while `victim` (a master) is SIGKILLed; every "stored" send must arrive exactly once. */
    const killMidTraffic = async (fault: string, slotKey: string): Promise<number> => {
      const history = new History();
      const load = new LoadDriver(stack.origin, history, { inFlight: 2, intervalMs: 100, maxPerDevicePerPhase: 400, vanishingShare: 0, vanishingMs: [0, 0], sendTimeoutMs: 5000 });
      try {
        await load.addDevices(6);
        const victim = await cluster.masterOf(keySlot(slotKey));
        load.start(fault);
        await sleep(3000);
        const killedAt = Date.now();
        await cluster.kill(victim);
        await cluster.waitFailover(victim);
        const failoverMs = Date.now() - killedAt;
        expect(await cluster.masterOf(keySlot(slotKey))).not.toBe(victim);
        await allReady();
        await sleep(4000);
        const { unsettled } = await load.stop(20_000);
        const check = () => history.check({ now: Date.now(), lateGraceMs: 1000 });
        await waitFor(() => check().reports[0]!.lost === 0, 60_000, 'every stored message delivered').catch(() => undefined);
        const { reports, violations } = check();
        const r = reports[0]!;
        const afterFailover = history.sends.filter((s) => s.ackedAt !== undefined && s.sentAt > killedAt + failoverMs).length;
        process.stdout.write(`${JSON.stringify({ fault, failoverMs, sent: r.sent, acked: r.acked, afterFailover, delivered: r.delivered, duplicatesSuppressed: r.duplicatesSuppressed, lost: r.lost, unsettled, sendErrors: Object.fromEntries(load.sendErrors) })}\n`);
        expect(r.acked).toBeGreaterThan(100);
        expect({ lost: r.lost, shownTwice: r.shownTwice, misrouted: r.misrouted, violations: violations.slice(0, 5) }).toEqual({ lost: 0, shownTwice: 0, misrouted: 0, violations: [] });
        expect(afterFailover).toBeGreaterThan(0);
        return victim;
      } finally {
        await load.close();
      }
    };

    it('loses no stored message when the master of the queues is killed mid-traffic', async () => {
      const victim = await killMidTraffic('kill-queues-master', stack.env.REDIS_PREFIX!);
      await cluster.restart(victim);
    }, 180_000);

    it("loses no stored message when the master holding a gateway's deliver channel is killed; the channel moves to the new master", async () => {
      const gw = stack.of('gateway')[0]!;
      const channel = Channels.deliver(stack.env.REDIS_PREFIX!, gw.id);
      await killMidTraffic('kill-channel-master', channel);
      const owner = await cluster.masterOf(keySlot(channel));
      await waitFor(async () => (await cluster.cmd(owner, 'PUBSUB', 'SHARDCHANNELS', channel)).includes(channel), 10_000, 'the channel subscribed on the new master');
    }, 180_000);
  });
});

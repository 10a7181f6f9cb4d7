/**
 * Floor benchmark (not a test): what the parts Umbra's delivery path is made of cost on this
 * machine, with nothing of Umbra around them. The same load generator and phases as
 * bench:delivery (dist/bench/delivery-load.js: one socket per device, Poisson senders, SDK-style
 * acks) run against dist/bench/floor-server.js in three configurations, each adding a part:
 *
 *   socketio        one process: Umbra's socket.io frames only (send + "stored" answer, push, ack)
 *   +postgres       every send committed before its "stored" answer, acks deleted, drains
 *   +redis          two processes, half of the recipients on the sender's other one, reached through
 *                   Redis (HGET presence, PUBLISH): the cross-gateway hop
 *   relay           the card's shape: the two gateways hand sends to two relay processes in BullMQ
 *                   jobs, the relays commit and publish the answers and deliveries back
 *   streams         the same with a Redis Stream and a consumer group instead of BullMQ
 *
 * `--parts socketio,postgres,redis,relay,streams` picks configurations (default all five); the other flags are
 * bench:delivery's (--devices 400 --rate 1000 --seconds 10 --warmup 3 --window 1 --drain 20000
 * --offline 100 --size 200). Prints one JSON object as its last line: per configuration the same
 * figures as bench:delivery's realistic mode, and the Redis PUBLISH calls seen.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import IORedis from 'ioredis';
import { CpuSampler, type PidSource } from './support/proc-cpu';
import { postgresPids, redisServerPid } from './support/server-pids';
import { PgStats } from './support/pg-stats';
import { recreateDatabase } from './support/fresh-database';
import { startLoadProcs } from './support/load-procs';
import { runLoadPhases } from './support/load-phases';
import { numericArgs } from './support/args';
import { spreadPair, type DevicePair } from './support/load-protocol';

const CONFIGS = {
  socketio: { store: 'none', hop: 'local', workers: 1, relays: 0, transport: 'bullmq' },
  postgres: { store: 'postgres', hop: 'local', workers: 1, relays: 0, transport: 'bullmq' },
  redis: { store: 'postgres', hop: 'redis', workers: 2, relays: 0, transport: 'bullmq' },
  relay: { store: 'postgres', hop: 'redis', workers: 2, relays: 2, transport: 'bullmq' },
  streams: { store: 'postgres', hop: 'redis', workers: 2, relays: 2, transport: 'streams' },
} as const;
type ConfigName = keyof typeof CONFIGS;

const SCHEMA = `
  CREATE TABLE floor_envelopes (
    id bigserial PRIMARY KEY,
    recipient text NOT NULL,
    sender text NOT NULL,
    client_message_id text NOT NULL,
    content text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (sender, client_message_id, recipient)
  );
  CREATE INDEX floor_envelopes_recipient ON floor_envelopes (recipient, id);`;

const log = (msg: string) => process.stderr.write(`[floor] ${msg}\n`);

function parseParts(argv: string[]): ConfigName[] {
  const i = argv.indexOf('--parts');
  if (i < 0) return Object.keys(CONFIGS) as ConfigName[];
  const names = (argv[i + 1] ?? '').split(',');
  for (const n of names) if (!(n in CONFIGS)) throw new Error(`--parts takes ${Object.keys(CONFIGS).join(',')}; got ${n}`);
  return names as ConfigName[];
}

interface FloorServer {
  child: ChildProcess;
  pids: number[];
}

function startFloorServer(name: ConfigName, port: number, databaseUrl: string, redisUrl: string, prefix: string): Promise<FloorServer> {
  const c = CONFIGS[name];
  const args = ['--port', String(port), '--store', c.store, '--hop', c.hop, '--workers', String(c.workers), '--relays', String(c.relays), '--transport', c.transport, '--database-url', databaseUrl, '--redis-url', redisUrl, '--prefix', prefix];
  const child = fork(path.join(__dirname, 'floor-server.js'), args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('message', (m: { type: string; pids: number[] }) => resolve({ child, pids: m.pids }));
    child.once('exit', (code) => reject(new Error(`floor server exited (${code})`)));
  });
}

function rssOf(pids: number[]): number[] {
  return pids.map((pid) => {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  });
}

async function runConfig(name: ConfigName, a: Defaults, databaseUrl: string, redisUrl: string) {
  await recreateDatabase(databaseUrl);
  const db = new Client({ connectionString: databaseUrl });
  await db.connect();
  await db.query(SCHEMA);
  await db.end();
  const prefix = `floor${process.pid}${name}`;
  const port = 18090;
  const server = await startFloorServer(name, port, databaseUrl, redisUrl, prefix);
  const gateways = server.pids.slice(1, 1 + CONFIGS[name].workers);
  const redisPid = await redisServerPid(redisUrl).catch(() => undefined);
  const pg = await postgresPids(databaseUrl).catch(() => undefined);
  const pgStats = await PgStats.open(databaseUrl);
  const nPairs = a.devices / 2;
  const workers = CONFIGS[name].workers;
  const device = (i: number, worker: number) => ({ token: `acct${i}.1`, accountId: `acct${i}`, deviceId: 1, origin: `http://127.0.0.1:${port + worker}` });
  const pairs: DevicePair[] = Array.from({ length: nPairs }, (_x, i) => {
    const at = spreadPair(i, workers);
    return { sender: device(i, at.sender), recipient: device(nPairs + i, at.recipient) };
  });
  const load = await startLoadProcs(1, `http://127.0.0.1:${port}`, pairs, a.size);
  const groups: Record<string, PidSource> = {
    'svc:floor': () => server.pids,
    loadGen: () => load.flatMap((p) => (p.pid !== undefined ? [p.pid] : [])),
  };
  if (redisPid !== undefined) groups.redis = () => [redisPid];
  if (pg) groups.postgres = pg.source;
  const redis = new IORedis(redisUrl);
  const publishesBefore = await publishCalls(redis);
  try {
    log(`${name}: ${JSON.stringify(CONFIGS[name])}`);
    // Without a store nothing outlives a disconnect: there is no offline phase to measure.
    const durable = CONFIGS[name].store !== 'none';
    const figures = await runLoadPhases(load, durable ? a : { ...a, drain: 0 }, { sampler: new CpuSampler(groups), pgStats, rss: async () => rssOf(gateways), log });
    const stored = figures.steady.stored + figures.saturation.stored + (durable ? figures.offline.stored : 0);
    // Shared with whatever else publishes on this Redis: an upper bound of the floor's own hops.
    const publishes = (await publishCalls(redis)) - publishesBefore;
    // BullMQ numbers a queue's jobs from this counter.
    const relayJobs = Number((await redis.get(`${prefix}:floor-relay:id`)) ?? 0);
    return { config: CONFIGS[name], ...figures, offline: durable ? figures.offline : null, stored_total: stored, redis_publishes: publishes, relay_jobs: relayJobs };
  } finally {
    await Promise.all(load.map((p) => p.stop()));
    await pg?.close();
    await pgStats.close();
    server.child.disconnect();
    await new Promise((r) => setTimeout(r, 500));
    for await (const keys of redis.scanStream({ match: `${prefix}:*`, count: 500 }) as AsyncIterable<string[]>) if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  }
}

async function publishCalls(redis: IORedis): Promise<number> {
  const m = /cmdstat_publish:calls=(\d+)/.exec(await redis.info('commandstats'));
  return m ? Number(m[1]) : 0;
}

const DEFAULTS = { devices: 400, seconds: 10, warmup: 3, rate: 1000, drain: 20000, offline: 100, window: 1, size: 200, tail: 5000 };
type Defaults = typeof DEFAULTS;

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const a = numericArgs(DEFAULTS, argv);
  const parts = parseParts(argv);
  const databaseUrl = process.env.FLOOR_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/umbra_floor';
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const out: Record<string, unknown> = {};
  for (const name of parts) out[name] = await runConfig(name, a, databaseUrl, redisUrl);
  process.stdout.write(`${JSON.stringify({ bench: 'floor', envelope_bytes: a.size, ...out })}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);

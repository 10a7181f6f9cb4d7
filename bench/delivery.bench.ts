/**
 * Delivery benchmark (not a test). Starts the system on loopback (or uses --url) and registers
 * --devices devices in sender/recipient pairs. Two modes:
 *
 * --mode realistic (the default; also `--realistic`): the load runs in its own process(es)
 * (dist/bench/delivery-load.js, --load-procs, default 1), every device has its own socket.io
 * connection on the public origin, each sender sends 200-byte opaque envelopes at its own Poisson
 * rate so that the total is --rate msg/s, and recipients ack like the SDK (after 5 ms or 200 ids).
 * Measures, over a steady window after a warm-up: send → receipt latency, server CPU per delivered
 * message from /proc/<pid>/stat deltas of every service process, redis-server and the Postgres
 * processes of the bench's database (and the load generator's CPU apart); then saturation (each
 * sender keeps --window sends in flight, the next one on the "stored" ack, lost must be 0), the
 * offline store and drain rates, and gateway memory per idle connection.
 *
 * --mode batch: the earlier workload (one process, senders on gateway 1 and recipients on gateway 2,
 * `window` sends in flight per sender, then a fixed-schedule steady phase) so that earlier numbers
 * stay reproducible.
 *
 * --direct: the load generator connects straight to the two gateways (as behind an L4 load balancer),
 * half of the recipients on their sender's other gateway, instead of through the embedded edge.
 *
 * --redis-cluster: the stack runs on a private Redis Cluster (3 masters, 3 replicas, started like
 * test/redis-cluster.heavy.ts does) through REDIS_CLUSTER_NODES; Redis CPU is that of all six nodes.
 *
 * Prints one JSON object with the figures as its last line.
 */
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { io, type Socket } from 'socket.io-client';
import { MemoryStore, UmbraClient } from '@umbra/sdk';
import { WS_PATH, type DeliveredEnvelope, type SendResult, type WsAck } from '@umbra/protocol';
import { startStack, type RunningStack } from '../scripts/lib/stack';
import { CpuSampler, type PidSource } from './support/proc-cpu';
import { postgresPids, redisServerPid, type PostgresPids } from './support/server-pids';
import { PgStats } from './support/pg-stats';
import { recreateDatabase } from './support/fresh-database';
import { startLoadProcs, type LoadProc } from './support/load-procs';
import { spreadPair, type DevicePair } from './support/load-protocol';
import { runLoadPhases, type PhaseArgs } from './support/load-phases';
import { startHistogramWindow, type GaugeSpec, type HistogramSpec } from './support/prom-histograms';
import { RedisCluster } from '../test/support/redis-cluster';

type Mode = 'realistic' | 'batch';

interface Args extends PhaseArgs {
  mode: Mode;
  url?: string;
  size: number;
  loadProcs: number;
  redisCluster: boolean;
  /** The load generator connects straight to the gateways (as behind an L4 balancer), not through the embedded edge. */
  direct: boolean;
}

function parseArgs(argv: string[]): Args {
  let mode: Mode = 'realistic';
  const given: Record<string, number> = {};
  let url: string | undefined;
  let redisCluster = false;
  let direct = false;
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!.replace(/^--/, '');
    const v = argv[i + 1];
    if (k === 'redis-cluster') redisCluster = true;
    else if (k === 'direct') direct = true;
    else if (k === 'realistic') mode = 'realistic';
    else if (k === 'batch') mode = 'batch';
    else if (k === 'mode' && v !== undefined) {
      if (v !== 'realistic' && v !== 'batch') throw new Error('--mode is realistic or batch');
      mode = v;
      i++;
    } else if (k === 'url' && v !== undefined) {
      url = v;
      i++;
    } else if (v !== undefined && !Number.isNaN(Number(v))) {
      given[k.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase())] = Number(v);
      i++;
    }
  }
  const defaults =
    mode === 'batch'
      ? { devices: 1000, seconds: 10, warmup: 0, rate: 1000, drain: 20000, offline: 100, window: 8, size: 200, loadProcs: 0, tail: 2000 }
      : { devices: 400, seconds: 10, warmup: 3, rate: 1000, drain: 20000, offline: 100, window: 1, size: 200, loadProcs: 1, tail: 5000 };
  const a: Args = { mode, url, redisCluster, direct, ...defaults };
  for (const [k, v] of Object.entries(given)) if (k in defaults) (a as unknown as Record<string, number>)[k] = v;
  if (a.devices < 2 || a.devices % 2) throw new Error('--devices must be an even number ≥ 2');
  if (a.mode === 'realistic' && a.loadProcs < 1) throw new Error('--load-procs must be ≥ 1');
  return a;
}

const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

interface Device {
  client: UmbraClient;
  token: string;
  accountId: string;
  deviceId: number;
  socket?: Socket;
}

async function register(origin: string, n: number): Promise<Device[]> {
  const out: Device[] = [];
  const batch = 25;
  for (let i = 0; i < n; i += batch) {
    const created = await Promise.all(
      Array.from({ length: Math.min(batch, n - i) }, async () => {
        const client = await UmbraClient.open({ serverUrl: origin, store: new MemoryStore() });
        const id = await client.createIdentity();
        const res = await client.register();
        return { client, token: res.token, accountId: id.accountIdText, deviceId: id.device.deviceId };
      }),
    );
    out.push(...created);
  }
  return out;
}

function connect(url: string, d: Device): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = io(url, { path: WS_PATH, transports: ['websocket'], auth: { token: d.token }, reconnection: false });
    s.once('connect', () => resolve(s));
    s.once('connect_error', reject);
  });
}

async function gatewayRss(stack: RunningStack | undefined): Promise<number[]> {
  if (!stack) return [];
  return Promise.all(
    stack.services
      .filter((s) => s.name === 'gateway')
      .map(async (s) => {
        const text = await (await fetch(`http://127.0.0.1:${s.port}/metrics`)).text();
        const m = /umbra_process_resident_memory_bytes\{[^}]*\} (\d+(?:\.\d+)?(?:e\+\d+)?)/.exec(text);
        return m ? Number(m[1]) : 0;
      }),
  );
}

async function runBatch(args: Args, stack: RunningStack | undefined, origin: string, gatewayUrls: string[]): Promise<void> {
  const rssBefore = await gatewayRss(stack);
  log(`registering ${args.devices} devices`);
  const devices = await register(origin, args.devices);
  const pairs = args.devices / 2;
  const senders = devices.slice(0, pairs);
  const recipients = devices.slice(pairs);

  log('connecting sockets (senders on gateway 1, recipients on gateway 2)');
  for (let i = 0; i < pairs; i += 50) {
    await Promise.all(senders.slice(i, i + 50).map(async (d) => (d.socket = await connect(gatewayUrls[0]!, d))));
    await Promise.all(recipients.slice(i, i + 50).map(async (d) => (d.socket = await connect(gatewayUrls[1]!, d))));
  }
  await new Promise((r) => setTimeout(r, 2000));
  (globalThis as { gc?: () => void }).gc?.();
  const rssIdle = await gatewayRss(stack);
  const bytesPerIdleConn = rssBefore.length ? Math.round(rssIdle.reduce((s, v, i) => s + (v - rssBefore[i]!), 0) / args.devices) : null;

  const sentAt = new Map<string, number>();
  const storedLat: number[] = [];
  const deliveredLat: number[] = [];
  let delivered = 0;
  let storedCount = 0;
  let failed = 0;
  const storedIds = new Set<string>();
  const deliveredIds = new Set<string>();
  for (const r of recipients) {
    const pending: string[] = [];
    r.socket!.on('messages', ({ messages }: { messages: DeliveredEnvelope[] }) => {
      const now = performance.now();
      for (const m of messages) {
        pending.push(m.id);
        const t = sentAt.get(m.clientMessageId);
        if (t !== undefined && !deliveredIds.has(m.clientMessageId)) {
          deliveredIds.add(m.clientMessageId);
          deliveredLat.push(now - t);
          delivered++;
        }
      }
      r.socket!.emit('ack', { ids: pending.splice(0) });
    });
  }
  const content = randomBytes(args.size).toString('base64url');
  const sendOne = (i: number): Promise<void> =>
    new Promise((resolve) => {
      const cmid = randomBytes(16).toString('base64url');
      const r = recipients[i]!;
      const t0 = performance.now();
      sentAt.set(cmid, t0);
      senders[i]!.socket!.timeout(30_000).emit('send', { clientMessageId: cmid, recipients: [{ accountId: r.accountId, deviceId: r.deviceId, type: 2, content }] }, (err: Error | null, res: WsAck<SendResult>) => {
        if (!err && res.ok) {
          storedLat.push(performance.now() - t0);
          storedIds.add(cmid);
          storedCount++;
        } else failed++;
        resolve();
      });
    });

  const summarize = (lat: number[]) => {
    const s = [...lat].sort((a, b) => a - b);
    return { p50: +percentile(s, 50).toFixed(2), p95: +percentile(s, 95).toFixed(2), p99: +percentile(s, 99).toFixed(2), max: +(s[s.length - 1] ?? 0).toFixed(2) };
  };

  // Phase 1: saturation, each sender keeps `window` sends in flight.
  log(`phase 1: saturation for ${args.seconds} s (${pairs} pairs, window ${args.window})`);
  const end1 = Date.now() + args.seconds * 1000;
  const d0 = delivered;
  const t1 = performance.now();
  await Promise.all(
    senders.map(async (_s, i) => {
      const lane = async () => {
        while (Date.now() < end1) await sendOne(i);
      };
      await Promise.all(Array.from({ length: args.window }, lane));
    }),
  );
  const satSeconds = (performance.now() - t1) / 1000;
  const satDelivered = delivered - d0;
  const satLatency = summarize(deliveredLat);
  const satStored = summarize(storedLat);

  // Phase 2: steady rate.
  log(`phase 2: steady ${args.rate} msg/s for ${args.seconds} s`);
  deliveredLat.length = 0;
  storedLat.length = 0;
  const total = args.rate * args.seconds;
  const startedAt = performance.now();
  const inflight: Promise<void>[] = [];
  for (let k = 0; k < total; k++) {
    const due = startedAt + (k * 1000) / args.rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    inflight.push(sendOne(k % pairs));
  }
  await Promise.all(inflight);
  await new Promise((r) => setTimeout(r, 2000));
  const steadyLatency = summarize(deliveredLat);
  const steadyStored = summarize(storedLat);
  const lost = [...storedIds].filter((id) => !deliveredIds.has(id)).length;

  // Phase 3: drain of offline queues.
  const drainDevices = recipients.slice(0, Math.min(100, pairs));
  for (const r of drainDevices) r.socket!.disconnect();
  await new Promise((r) => setTimeout(r, 500));
  log(`phase 3: ${args.drain} messages to ${drainDevices.length} offline devices, then reconnect and drain`);
  for (let k = 0; k < args.drain; k += 500) {
    await Promise.all(
      Array.from({ length: Math.min(500, args.drain - k) }, (_x, j) => {
        const i = (k + j) % drainDevices.length;
        return new Promise<void>((resolve) => {
          const r = drainDevices[i]!;
          senders[i]!.socket!.emit('send', { clientMessageId: randomBytes(16).toString('base64url'), recipients: [{ accountId: r.accountId, deviceId: r.deviceId, type: 2, content }] }, () => resolve());
        });
      }),
    );
  }
  let drained = 0;
  const drainStart = performance.now();
  await Promise.all(
    drainDevices.map(
      (d) =>
        new Promise<void>((resolve, reject) => {
          connect(gatewayUrls[1]!, d).then((s) => {
            d.socket = s;
            s.on('messages', ({ messages }: { messages: DeliveredEnvelope[] }) => {
              drained += messages.length;
              s.emit('ack', { ids: messages.map((m) => m.id) });
            });
            s.on('queue-empty', () => resolve());
          }, reject);
        }),
    ),
  );
  const drainSeconds = (performance.now() - drainStart) / 1000;

  for (const d of devices) d.socket?.disconnect();
  if (stack) {
    for (const s of stack.services.filter((x) => x.name === 'message-relay' || x.name === 'gateway')) {
      const text = await (await fetch(`http://127.0.0.1:${s.port}/metrics`)).text();
      const lines = text.split('\n').filter((l) => /^umbra_(job_wait|job_duration|send_stored_latency|delivery_latency)_seconds_(sum|count)/.test(l));
      log(`${s.instanceId}: ${lines.join(' | ')}`);
    }
  }
  const result = {
    devices: args.devices,
    seconds: args.seconds,
    envelope_bytes: args.size,
    delivered_per_s: Math.round(satDelivered / satSeconds),
    saturation_p50_ms: satLatency.p50,
    saturation_p99_ms: satLatency.p99,
    saturation_stored_p99_ms: satStored.p99,
    steady_rate_per_s: args.rate,
    p50_ms: steadyLatency.p50,
    p95_ms: steadyLatency.p95,
    p99_ms: steadyLatency.p99,
    max_ms: steadyLatency.max,
    stored_p50_ms: steadyStored.p50,
    stored_p99_ms: steadyStored.p99,
    send_failures: failed,
    stored: storedCount,
    lost,
    drain_messages: drained,
    drain_per_s: Math.round(drained / drainSeconds),
    bytes_per_idle_conn: bytesPerIdleConn,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}


/** CPU ms of the server side (per service, Redis, Postgres), the load generators and this process (the edge). */
function cpuGroups(stack: RunningStack | undefined, redisPids: number[], pg: PostgresPids | undefined, load: LoadProc[]): Record<string, PidSource> {
  const groups: Record<string, PidSource> = {};
  if (stack) {
    for (const name of new Set(stack.services.map((s) => s.name))) {
      groups[`svc:${name}`] = () => stack.services.filter((s) => s.name === name && s.child?.pid !== undefined).map((s) => s.child.pid!);
    }
  }
  if (redisPids.length > 0) groups.redis = () => redisPids;
  if (pg) groups.postgres = pg.source;
  groups.loadGen = () => load.flatMap((p) => (p.pid !== undefined ? [p.pid] : []));
  groups.edge = () => [process.pid];
  return groups;
}

const metricsOf = (stack: RunningStack, name: string) => stack.services.filter((s) => s.name === name).map((s) => `http://127.0.0.1:${s.port}/metrics`);

/**
 * Each gateway's and relay's event-loop lag (p50, p99 ms) over the steady window: how late
 * prom-client's 10 ms timer fired (its histogram records the whole interval; an idle process reads 10.2).
 */
function steadyLag(stack: RunningStack): GaugeSpec[] {
  const both = [...metricsOf(stack, 'gateway'), ...metricsOf(stack, 'message-relay')];
  return [
    { label: 'event_loop_lag_p50_ms_gateways_then_relays', metric: 'umbra_nodejs_eventloop_lag_p50_seconds', urls: both, offsetMs: 10 },
    { label: 'event_loop_lag_p99_ms_gateways_then_relays', metric: 'umbra_nodejs_eventloop_lag_p99_seconds', urls: both, offsetMs: 10 },
  ];
}

/** Where a steady message's time goes, from the services' own histograms (sums over instances). */
function steadyHistograms(stack: RunningStack): HistogramSpec[] {
  const gateways = metricsOf(stack, 'gateway');
  const relays = metricsOf(stack, 'message-relay');
  return [
    { label: 'gateway_send_to_stored', metric: 'umbra_send_stored_latency_seconds', urls: gateways },
    { label: 'relay_job_wait', metric: 'umbra_job_wait_seconds', match: 'queue="relay"', urls: relays },
    { label: 'relay_job_duration', metric: 'umbra_job_duration_seconds', match: 'queue="relay"', urls: relays },
    { label: 'stored_to_push', metric: 'umbra_delivery_latency_seconds', urls: gateways },
  ];
}

async function runRealistic(args: Args, stack: RunningStack | undefined, origin: string, databaseUrl: string, redisUrls: string[], gateways?: string[]): Promise<void> {
  log(`registering ${args.devices} devices`);
  const devices = await register(origin, args.devices);
  const nPairs = args.devices / 2;
  // --direct: spread like bench:floor, half of the recipients on their sender's other gateway.
  const on = (g: number) => (gateways ? { origin: gateways[g]! } : {});
  const pairs: DevicePair[] = Array.from({ length: nPairs }, (_x, i) => {
    const s = devices[i]!;
    const r = devices[nPairs + i]!;
    const at = spreadPair(i, gateways?.length ?? 1);
    return {
      sender: { token: s.token, accountId: s.accountId, deviceId: s.deviceId, ...on(at.sender) },
      recipient: { token: r.token, accountId: r.accountId, deviceId: r.deviceId, ...on(at.recipient) },
    };
  });
  // The SDK clients were only needed to register (keys, proof of work; never connected): the sockets are the load generator's.

  // Only a local server is measured: with --url the server may be anywhere.
  const redisPids = stack ? (await Promise.all(redisUrls.map((u) => redisServerPid(u).catch(() => undefined)))).filter((p): p is number => p !== undefined) : [];
  const pg = stack ? await postgresPids(databaseUrl).catch(() => undefined) : undefined;
  if (stack && redisPids.length < redisUrls.length) log('redis-server is not visible here: its CPU is not counted');
  if (stack && !pg) log('Postgres is not visible here: its CPU is not counted');
  const pgStats = stack ? await PgStats.open(databaseUrl).catch(() => undefined) : undefined;

  log(`starting ${args.loadProcs} load generator process(es)`);
  const load = await startLoadProcs(args.loadProcs, origin, pairs, args.size);
  const sampler = new CpuSampler(cpuGroups(stack, redisPids, pg, load));
  try {
    const timings = stack ? () => startHistogramWindow(steadyHistograms(stack), steadyLag(stack)) : undefined;
    const figures = await runLoadPhases(load, args, { sampler, ...(pgStats ? { pgStats } : {}), ...(timings ? { timings } : {}), rss: () => gatewayRss(stack), log });
    process.stdout.write(`${JSON.stringify({ mode: 'realistic', direct: gateways !== undefined, envelope_bytes: args.size, ...figures })}\n`);
  } finally {
    await Promise.all(load.map((p) => p.stop()));
    await pg?.close();
    await pgStats?.close();
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  let stack: RunningStack | undefined;
  let origin = args.url;
  let gatewayUrls: string[];
  const databaseUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/umbra_bench';
  // A database of the bench's own is fresh for every run; one given in BENCH_DATABASE_URL is left as it is.
  if (!origin && !process.env.BENCH_DATABASE_URL) await recreateDatabase(databaseUrl);
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const cluster = args.redisCluster && !origin ? await RedisCluster.start() : undefined;
  if (cluster) log(`Redis Cluster (3 masters, 3 replicas) on ${cluster.nodesEnv}`);
  const redisUrls = cluster ? cluster.ports.map((p) => `redis://127.0.0.1:${p}`) : [redisUrl];
  if (!origin) {
    const root = path.resolve(__dirname, '..', '..');
    const prefix = `bench${randomBytes(3).toString('hex')}`;
    stack = await startStack({
      env: {
        ...process.env,
        DATABASE_URL: databaseUrl,
        REDIS_PREFIX: prefix,
        LOG_LEVEL: 'warn',
        POW_DIFFICULTY: '1',
        RATE_LIMIT_REGISTER_PER_IP_PER_HOUR: '0',
        RATE_LIMIT_REGISTER_PER_ACCOUNT_PER_HOUR: '0',
        RATE_LIMIT_CHALLENGE_PER_IP_PER_MINUTE: '0',
        RATE_LIMIT_TOKEN_PER_DEVICE_PER_MINUTE: '0',
        RATE_LIMIT_SEND_PER_DEVICE_PER_SECOND: '100000',
        PUBLIC_ORIGIN: 'http://127.0.0.1:18080',
        ...(cluster ? { REDIS_CLUSTER_NODES: cluster.nodesEnv } : {}),
      },
      distDir: path.join(root, 'dist'),
      edgePort: 18080,
      host: '127.0.0.1',
      instances: { gateway: 2, 'message-relay': 2 },
      basePort: 13000,
      s3Dir: `/tmp/umbra-bench-s3-${prefix}`,
      s3Port: 19000,
      log,
      serviceOutput: 'inherit',
    }).catch(async (err: unknown) => {
      await cluster?.stop();
      throw err;
    });
    origin = stack.origin;
    gatewayUrls = stack.services.filter((s) => s.name === 'gateway').map((s) => `http://127.0.0.1:${s.port}`);
  } else {
    gatewayUrls = [origin, origin];
  }
  try {
    if (args.mode === 'batch') await runBatch(args, stack, origin, gatewayUrls);
    else await runRealistic(args, stack, origin, databaseUrl, redisUrls, args.direct ? gatewayUrls : undefined);
  } finally {
    await stack?.stop();
    await cluster?.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);

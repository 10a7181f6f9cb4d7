/**
 * Load model (issue 17, docs/scaling.md): from one `bench:delivery` result (its last stdout line)
 * and stated assumptions, how many gateway and relay pods, Redis shards and Postgres/Citus workers
 * serve a number of devices at peak, which resource binds each, and how far one Redis and one
 * Postgres primary (the parts that do not scale by adding pods) go.
 *
 *   npm run scaling-model -- --bench bench/fixtures/delivery-2core.json [--name value ...]
 *
 * Prints a markdown table, then one JSON line. `--help` lists the assumptions and their defaults.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';

/** Every assumption, with its default and what it means (the `--help` text and docs/scaling.md). */
export const ASSUMPTIONS = {
  msgsPerUserDay: [50, 'messages sent per user per day (WhatsApp: ~100 B/day over ~2-3 B users = 40-50)'],
  devicesPerUser: [1.5, 'devices per user (a phone, and a linked desktop for every other user)'],
  fanout: [3, 'recipient users per send, averaged over 1:1 and group chats'],
  peakRatio: [4, 'peak-hour rate / daily average (3-5)'],
  connected: [0.5, 'share of devices with an open socket at peak'],
  perSendShare: [0.5, "share of the bench's per-message CPU a send pays once, whatever its fan-out (0 = all per delivery: upper bound)"],
  cpuTarget: [0.6, 'CPU utilisation target of a pod, a Redis shard and a Postgres worker'],
  memTarget: [0.6, 'memory (and disk) fill target'],
  podCores: [1, 'cores per gateway / relay pod (k8s limit: Node runs one thread)'],
  podMemMib: [512, 'memory limit of a gateway pod, MiB (k8s/base/gateway.yaml)'],
  gatewayBaseMib: [100, 'RSS of a gateway with no socket, MiB (not measured by the bench)'],
  connBytes: [0, "gateway memory per socket, bytes (0 = the bench's bytes_per_idle_conn_marginal)"],
  idleConnUsPerS: [2, 'gateway CPU µs per second per idle socket (a ping per 25 s and a presence refresh per 30 s; not measured)'],
  presenceRefreshS: [30, 'presence refresh interval per socket, s'],
  redisUsPerRefresh: [10, 'Redis CPU µs per presence refresh (a Lua compare-and-set; not measured)'],
  redisBytesPerConn: [256, 'Redis memory per connected device: presence key and send-rate bucket, bytes'],
  redisShardGib: [16, 'memory of one Redis shard, GiB'],
  deliveryCheckS: [15, 'DELIVERY_CHECK_INTERVAL_MS / 1000: one indexed probe per idle socket per interval'],
  pgUsPerProbe: [5, 'Postgres CPU µs per delivery-check probe (not measured)'],
  pgCores: [16, 'cores per Postgres primary / Citus worker'],
  pgWorkerRowsPerS: [100_000, 'row writes per second one worker sustains (WAL and IOPS; not measured)'],
  pgWorkerDiskTb: [2, 'usable disk per worker, TB'],
  retentionDays: [30, 'MAX_RETENTION_S in days: how long a send record (idempotency key) is kept'],
  sendRowBytes: [200, 'message_sends row with its primary key index, bytes'],
  envelopeOverheadBytes: [150, 'envelope row and indexes beyond the sealed content, bytes'],
  envelopeBytes: [0, "average envelope (ciphertext) size, bytes (0 = the bench's envelope_bytes)"],
  backlogHours: [12, 'average time an envelope for a disconnected device waits in Postgres, h'],
} as const satisfies Record<string, readonly [number, string]>;

export type Assumptions = { [K in keyof typeof ASSUMPTIONS]: number };
export const DEFAULT_ASSUMPTIONS = Object.fromEntries(Object.entries(ASSUMPTIONS).map(([k, [v]]) => [k, v])) as Assumptions;
export const DEFAULT_DEVICES = [1e6, 1e7, 1e8];

const perMsg = z.object({ services: z.number(), redis: z.number(), postgres: z.number(), total: z.number() });
const rows = z.object({ inserted: z.number().nullable(), updated: z.number().nullable(), deleted: z.number().nullable() });
const BenchSchema = z.object({
  mode: z.literal('realistic'),
  cpus: z.number(),
  envelope_bytes: z.number().positive(),
  steady: z.object({
    achieved_rate_per_s: z.number(),
    serverCpuMsPerMsg: perMsg,
    servicesCpuMsPerMsg: z.object({ gateway: z.number(), 'message-relay': z.number() }),
    pgRowsPerMsg: rows.optional(),
  }),
  bytes_per_idle_conn: z.number().positive(),
  bytes_per_idle_conn_marginal: z.number().positive().nullable().optional(),
});

/** What the model takes from the bench: cost per message at fan-out 1 (one send, one delivery). */
export interface BenchInputs {
  cpus: number;
  rate: number;
  gatewayMs: number;
  relayMs: number;
  redisMs: number;
  pgMs: number;
  connBytes: number;
  envelopeBytes: number;
  /** Postgres rows a send writes once (its record, and the record's deletion after retention). */
  rowsPerSend: number;
  /** Rows per delivered envelope: insert, ack delete, queue counters. */
  rowsPerDelivery: number;
  rowsSource: 'measured' | 'design';
}

/** Without measured rows: the envelope insert, its ack delete and the device_queues counter's update (inserts count; deletes do not). */
const DESIGN_ROWS_PER_DELIVERY = 3;
const ROWS_PER_SEND = 2;

/** Reads a bench result: the file's last line that is a JSON object (the bench's whole stdout will do). */
export function benchInputs(text: string): BenchInputs {
  const line = text.trim().split('\n').reverse().find((l) => l.trim().startsWith('{'));
  if (!line) throw new Error('no JSON line in the bench output');
  const parsed = BenchSchema.safeParse(JSON.parse(line));
  if (!parsed.success) throw new Error(`not a realistic delivery bench result: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const b = parsed.data;
  const r = b.steady.pgRowsPerMsg;
  const measured = r && r.inserted !== null && r.updated !== null && r.deleted !== null ? r.inserted + r.updated + r.deleted : undefined;
  return {
    cpus: b.cpus,
    rate: b.steady.achieved_rate_per_s,
    gatewayMs: b.steady.servicesCpuMsPerMsg.gateway,
    relayMs: b.steady.servicesCpuMsPerMsg['message-relay'],
    redisMs: b.steady.serverCpuMsPerMsg.redis,
    pgMs: b.steady.serverCpuMsPerMsg.postgres,
    connBytes: b.bytes_per_idle_conn_marginal ?? b.bytes_per_idle_conn,
    envelopeBytes: b.envelope_bytes,
    rowsPerSend: ROWS_PER_SEND,
    // Measured in the window: the send record's insert (its delete comes after retention) and the delivery's rows.
    rowsPerDelivery: measured !== undefined ? Math.max(0, measured - 1) : DESIGN_ROWS_PER_DELIVERY,
    rowsSource: measured !== undefined ? 'measured' : 'design',
  };
}

export interface Tier {
  count: number;
  binding: string;
  /** Units needed before rounding up, per resource. */
  need: Record<string, number>;
}

export interface ModelRow {
  devices: number;
  peakSendsPerS: number;
  peakDeliveriesPerS: number;
  connected: number;
  gateway: Tier;
  relay: Tier;
  redis: Tier;
  postgres: Tier & { rowsPerS: number; storageBytes: number };
}

const MIB = 2 ** 20;
const GIB = 2 ** 30;

function tier(need: Record<string, number>, min: (n: number) => number): Tier {
  const [binding, units] = Object.entries(need).reduce((a, b) => (b[1] > a[1] ? b : a));
  return { count: min(Math.max(1, Math.ceil(units - 1e-9))), binding, need };
}

/** The model for one device count. Every load is proportional to the devices. */
export function model(devices: number, b: BenchInputs, a: Assumptions): ModelRow {
  const users = devices / a.devicesPerUser;
  const sendsPerDay = users * a.msgsPerUserDay;
  const sends = (sendsPerDay / 86_400) * a.peakRatio;
  // Every recipient user's devices, and the sender's own other devices (their sync copy).
  const deliveriesPerSend = a.fanout * a.devicesPerUser + (a.devicesPerUser - 1);
  const deliveries = sends * deliveriesPerSend;
  const connected = devices * a.connected;
  /** CPU ms per second for a cost measured per message at fan-out 1. */
  const cpu = (msPerMsg: number) => msPerMsg * (a.perSendShare * sends + (1 - a.perSendShare) * deliveries);
  const podCpuMsPerS = 1000 * a.podCores * a.cpuTarget;

  const connBytes = a.connBytes || b.connBytes;
  const gatewayUsable = a.podMemMib * MIB * a.memTarget - a.gatewayBaseMib * MIB;
  if (gatewayUsable <= 0) throw new Error('--gateway-base-mib leaves no memory for sockets at --mem-target');
  const atLeastTwo = (n: number) => Math.max(2, n);
  const gateway = tier(
    { cpu: (cpu(b.gatewayMs) + (connected * a.idleConnUsPerS) / 1000) / podCpuMsPerS, memory: (connected * connBytes) / gatewayUsable },
    atLeastTwo,
  );
  const relay = tier({ cpu: cpu(b.relayMs) / podCpuMsPerS }, atLeastTwo);
  const redis = tier(
    {
      cpu: (cpu(b.redisMs) + ((connected / a.presenceRefreshS) * a.redisUsPerRefresh) / 1000) / (1000 * a.cpuTarget),
      memory: (connected * a.redisBytesPerConn) / (a.redisShardGib * GIB * a.memTarget),
    },
    // A Redis Cluster has at least three masters.
    (n) => (n > 1 ? Math.max(3, n) : n),
  );
  const rowsPerS = sends * b.rowsPerSend + deliveries * b.rowsPerDelivery;
  const envelopeBytes = a.envelopeBytes || b.envelopeBytes;
  // Sealed content is the ciphertext plus 28 bytes (nonce and tag).
  const backlog = sendsPerDay * deliveriesPerSend * (1 - a.connected) * (a.backlogHours / 24);
  const storageBytes = sendsPerDay * a.retentionDays * a.sendRowBytes + backlog * (envelopeBytes + 28 + a.envelopeOverheadBytes);
  const postgres = tier(
    {
      cpu: (cpu(b.pgMs) + ((connected / a.deliveryCheckS) * a.pgUsPerProbe) / 1000) / (1000 * a.pgCores * a.cpuTarget),
      'rows/s': rowsPerS / a.pgWorkerRowsPerS,
      storage: storageBytes / (a.pgWorkerDiskTb * 1e12 * a.memTarget),
    },
    (n) => n,
  );
  return { devices, peakSendsPerS: sends, peakDeliveriesPerS: deliveries, connected, gateway, relay, redis, postgres: { ...postgres, rowsPerS, storageBytes } };
}

/** Devices one unit serves: every load is proportional to the devices, so it is devices / units needed. */
export function perUnit(row: ModelRow, t: Tier): number {
  return row.devices / Math.max(...Object.values(t.need));
}

const int = (v: number) => Math.round(v).toLocaleString('en-US');
const sig = (v: number) => (v >= 100 ? int(v) : v.toPrecision(2));
function bytes(v: number): string {
  for (const [unit, size] of [['PB', 1e15], ['TB', 1e12], ['GB', 1e9], ['MB', 1e6]] as const) if (v >= size) return `${sig(v / size)} ${unit}`;
  return `${int(v)} B`;
}
const devicesLabel = (d: number) => (Number.isInteger(Math.log10(d)) ? `10^${Math.log10(d)}` : int(d));
const cell = (t: Tier) => `${t.count} (${t.binding})`;

/** The markdown table and the single-node limits. */
export function render(rows: ModelRow[], b: BenchInputs, a: Assumptions): string {
  const head = `| | ${rows.map((r) => `${devicesLabel(r.devices)} devices`).join(' | ')} |`;
  const line = (label: string, f: (r: ModelRow) => string) => `| ${label} | ${rows.map(f).join(' | ')} |`;
  const first = rows[0]!;
  const redisOne = perUnit(first, first.redis);
  const pgOne = perUnit(first, first.postgres);
  const [short, other] = redisOne <= pgOne ? (['Redis', 'Postgres'] as const) : (['Postgres', 'Redis'] as const);
  return [
    head,
    `|---|${rows.map(() => '---:').join('|')}|`,
    line('peak sends/s', (r) => int(r.peakSendsPerS)),
    line('peak deliveries/s (envelopes)', (r) => int(r.peakDeliveriesPerS)),
    line('open sockets at peak', (r) => int(r.connected)),
    line(`gateway pods (${a.podCores} core, ${a.podMemMib} MiB)`, (r) => cell(r.gateway)),
    line(`message-relay pods (${a.podCores} core)`, (r) => cell(r.relay)),
    line(`Redis shards (1 core, ${a.redisShardGib} GiB)`, (r) => cell(r.redis)),
    line('Postgres row writes/s at peak', (r) => int(r.postgres.rowsPerS)),
    line(`Postgres storage (${a.retentionDays} d of send records, envelope backlog)`, (r) => bytes(r.postgres.storageBytes)),
    line(`Postgres primary / Citus workers (${a.pgCores} cores, ${a.pgWorkerDiskTb} TB)`, (r) => cell(r.postgres)),
    '',
    `- One gateway pod serves ${int(perUnit(first, first.gateway))} devices, ${int(perUnit(first, first.gateway) * a.connected)} of them connected (${first.gateway.binding}); one relay pod serves ${int(perUnit(first, first.relay))} devices (${first.relay.binding}).`,
    `- One Redis (one core at ${Math.round(a.cpuTarget * 100)} %) serves up to ${int(redisOne)} devices (${first.redis.binding}); one Postgres primary (${a.pgCores} cores) up to ${int(pgOne)} devices (${first.postgres.binding}).`,
    `- Runs out first: ${short}, at ${int(Math.min(redisOne, pgOne))} devices (${other} at ${int(Math.max(redisOne, pgOne))}).`,
    `- Postgres rows: ${b.rowsPerSend} per send, ${b.rowsPerDelivery} per delivery (${b.rowsSource === 'measured' ? "measured: the bench's pgRowsPerMsg" : 'from the design, an upper bound: the bench gave no pgRowsPerMsg'}).`,
  ].join('\n');
}

/** Divisors, and shares of a whole. */
const POSITIVE: (keyof Assumptions)[] = ['devicesPerUser', 'cpuTarget', 'memTarget', 'podCores', 'podMemMib', 'presenceRefreshS', 'redisShardGib', 'deliveryCheckS', 'pgCores', 'pgWorkerRowsPerS', 'pgWorkerDiskTb'];
const SHARES: (keyof Assumptions)[] = ['connected', 'perSendShare', 'cpuTarget', 'memTarget'];

const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** `--bench <file>`, `--devices a,b,c` and `--<assumption> <number>`; anything else is an error. */
export function parseArgs(argv: string[]): { bench?: string; devices: number[]; assumptions: Assumptions; help: boolean } {
  const assumptions = { ...DEFAULT_ASSUMPTIONS };
  const byFlag = new Map(Object.keys(ASSUMPTIONS).map((k) => [`--${kebab(k)}`, k as keyof Assumptions]));
  let bench: string | undefined;
  let devices = DEFAULT_DEVICES;
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (flag === '--help' || flag === '-h') {
      help = true;
      continue;
    }
    const value = argv[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    const key = byFlag.get(flag);
    if (flag === '--bench') bench = value;
    else if (flag === '--devices') devices = value.split(',').map(Number);
    else if (key) assumptions[key] = Number(value);
    else throw new Error(`unknown option ${flag} (--help lists them)`);
    if (Object.values(assumptions).some((v) => !Number.isFinite(v) || v < 0) || devices.some((d) => !(d > 0))) {
      throw new Error(`${flag} ${value}: not a non-negative number`);
    }
  }
  for (const k of POSITIVE) if (!(assumptions[k] > 0)) throw new Error(`--${kebab(k)} must be > 0`);
  for (const k of SHARES) if (assumptions[k] > 1) throw new Error(`--${kebab(k)} is a share: at most 1`);
  return { bench, devices, assumptions, help };
}

/** The assumptions as a markdown table (docs/scaling.md). */
export function assumptionsTable(): string {
  const rows = Object.entries(ASSUMPTIONS).map(([k, [v, text]]) => `| \`--${kebab(k)}\` | ${v} | ${text} |`);
  return ['| flag | default | meaning |', '|---|---:|---|', ...rows].join('\n');
}

function usage(): string {
  const lines = Object.entries(ASSUMPTIONS).map(([k, [v, text]]) => `  --${kebab(k)} <n>  (${v}) ${text}`);
  return ['usage: npm run scaling-model -- --bench <delivery bench JSON> [--devices 1e6,1e7,1e8] [options]', ...lines].join('\n');
}

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  if (args.help || !args.bench) {
    process.stdout.write(`${usage()}\n`);
    process.exitCode = args.help ? 0 : 2;
    return;
  }
  const inputs = benchInputs(readFileSync(args.bench, 'utf8'));
  const rows = args.devices.map((d) => model(d, inputs, args.assumptions));
  process.stdout.write(`${render(rows, inputs, args.assumptions)}\n`);
  process.stdout.write(`${JSON.stringify({ inputs, assumptions: args.assumptions, rows })}\n`);
}

// Run as a script (CommonJS build), not when a test imports the module.
if (typeof require !== 'undefined' && require.main === module) {
  try {
    main();
  } catch (err) {
    process.stderr.write(`scaling-model: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 2;
  }
}

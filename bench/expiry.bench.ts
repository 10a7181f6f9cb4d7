/**
 * Expiry benchmark (not a test). Starts the system on loopback with --workers expiry-workers, stores
 * --messages vanishing messages (one recipient device each, straight into the message store, the way
 * message-relay does) with due times spread over --spread seconds starting --lead seconds from now,
 * schedules their delayed jobs, then watches Postgres: a message counts as deleted at the first poll
 * (every --poll ms) that no longer finds it. Reports deletions per second and the lag between due
 * time and deletion (p50, p99, max). Prints one JSON object with the figures as its last line.
 */
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { DataSource } from 'typeorm';
import {
  EnvelopeSealer,
  EnvelopeStoreRepository,
  ExpiryKeysRepository,
  ExpiryScheduler,
  QueueRegistry,
  createDataSource,
  type StoreSend,
} from '@umbra/server';
import { startStack, type RunningStack } from '../scripts/lib/stack';
import { numericArgs } from './support/args';

interface Args {
  messages: number;
  spread: number;
  lead: number;
  workers: number;
  poll: number;
}

function parseArgs(argv: string[]): Args {
  // Due within a minute of the start, packed into 40 s: 2,500 deletions/s are needed to keep up.
  return numericArgs<Args>({ messages: 100_000, spread: 40, lead: 30, workers: 2, poll: 50 }, argv);
}

const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);

/** The most deletions seen within any one-second bucket. */
function peakPerSecond(times: number[]): number {
  const buckets = new Map<number, number>();
  for (const t of times) buckets.set(Math.floor(t / 1000), (buckets.get(Math.floor(t / 1000)) ?? 0) + 1);
  return Math.max(0, ...buckets.values());
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const root = path.resolve(__dirname, '..', '..');
  const prefix = `benchx${randomBytes(3).toString('hex')}`;
  const databaseUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/umbra_bench';
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const stack: RunningStack = await startStack({
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      REDIS_URL: redisUrl,
      REDIS_PREFIX: prefix,
      LOG_LEVEL: 'warn',
      PUBLIC_ORIGIN: 'http://127.0.0.1:18180',
      // The jobs must do the work: the sweep only runs once, after the benchmark window.
      SWEEP_INTERVAL_MS: '3600000',
    },
    distDir: path.join(root, 'dist'),
    edgePort: 18180,
    host: '127.0.0.1',
    instances: { 'expiry-worker': args.workers, gateway: 1, 'message-relay': 1 },
    basePort: 13100,
    s3Dir: `/tmp/umbra-bench-s3-${prefix}`,
    s3Port: 19100,
    log,
    serviceOutput: 'inherit',
  });
  const ds: DataSource = createDataSource(databaseUrl, 4);
  await ds.initialize();
  const queues = new QueueRegistry(redisUrl, prefix);
  try {
    const repo = new EnvelopeStoreRepository(ds, new EnvelopeSealer(new ExpiryKeysRepository(ds), 60_000));
    const scheduler = new ExpiryScheduler(queues);
    const sender = { accountId: randomBytes(32), deviceId: 1 };
    const t0 = Date.now();
    const firstDue = t0 + args.lead * 1000;
    const due = new Map<string, number>();
    const batch = 1000;
    let stored = 0;
    for (let i = 0; i < args.messages; i += batch) {
      const sends: StoreSend[] = [];
      for (let j = i; j < Math.min(args.messages, i + batch); j++) {
        const dueAt = firstDue + Math.floor((j / args.messages) * args.spread * 1000);
        const cmid = randomBytes(16);
        due.set(cmid.toString('hex'), dueAt);
        sends.push({ sender, clientMessageId: cmid, expiresAt: dueAt, readTtlS: 0, recipients: [{ accountId: randomBytes(32), deviceId: 1, type: 2, content: randomBytes(180) }] });
      }
      const results = await repo.storeBatch(sends, Date.now(), 30 * 86_400_000);
      await scheduler.schedule(results.map((r, k) => ({ message: { sender, clientMessageId: sends[k]!.clientMessageId }, dueAt: r.envelopes[0]!.deleteAt })), Date.now());
      stored += sends.length;
    }
    const scheduledMs = Date.now() - t0;
    log(`stored and scheduled ${stored} vanishing messages in ${scheduledMs} ms; first due in ${Math.max(0, firstDue - Date.now())} ms`);
    if (Date.now() > firstDue) log('WARNING: scheduling took longer than --lead; the first messages were already due');

    const deletedAt = new Map<string, number>();
    const senderBuf = sender.accountId;
    let pending = new Set(due.keys());
    const deadline = firstDue + args.spread * 1000 + 120_000;
    while (pending.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, args.poll));
      const now = Date.now();
      const rows: { c: Buffer }[] = await ds.query(
        `SELECT client_message_id AS c FROM message_sends WHERE sender_account = $1 AND sender_device = 1 AND delete_at <= $2`,
        [senderBuf, now],
      );
      const overdue = new Set(rows.map((r) => r.c.toString('hex')));
      const next = new Set<string>();
      for (const id of pending) {
        if (due.get(id)! > now) next.add(id);
        else if (overdue.has(id)) next.add(id);
        else deletedAt.set(id, now);
      }
      pending = next;
    }
    const lags = [...deletedAt].map(([id, at]) => Math.max(0, at - due.get(id)!)).sort((a, b) => a - b);
    const firstDeletion = Math.min(...deletedAt.values());
    const lastDeletion = Math.max(...deletedAt.values());
    const [left] = (await ds.query(`SELECT count(*)::int AS n FROM envelopes WHERE sender_account = $1`, [senderBuf])) as { n: number }[];
    const result = {
      bench: 'expiry',
      messages: args.messages,
      workers: args.workers,
      spreadS: args.spread,
      scheduleMs: scheduledMs,
      scheduledPerSecond: Math.round(args.messages / (scheduledMs / 1000)),
      deleted: deletedAt.size,
      notDeleted: pending.size,
      envelopeRowsLeft: left!.n,
      deletionsPerSecond: Math.round(deletedAt.size / Math.max(0.001, (lastDeletion - Math.max(firstDue, firstDeletion - args.poll)) / 1000)),
      duePerSecond: Math.round(args.messages / args.spread),
      peakDeletionsPerSecond: peakPerSecond([...deletedAt.values()]),
      lagMs: { p50: percentile(lags, 50), p99: percentile(lags, 99), max: lags[lags.length - 1] ?? 0 },
      pollMs: args.poll,
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await queues.close();
    await ds.destroy();
    await stack.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});

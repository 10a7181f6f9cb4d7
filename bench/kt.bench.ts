/**
 * Key-transparency benchmark (not a test). On its own database (umbra_bench_kt, dropped and
 * re-created unless --reuse 1 finds enough leaves there) it queues --leaves statements straight into
 * kt_pending (as the accounts trigger would), then lets the log's sequencer append them in
 * --batch-sized transactions (leaves, subtree nodes and a signed STH each) and reports the append
 * rate. Then one key-directory serves --lookups sequential GET /v1/kt/lookup requests for random
 * labels over HTTP on loopback (lookup floor and rate limit off) and reports p50/p99, and the sizes of
 * an STH, a LookupResult and consistency proofs at that tree size. Prints one JSON object as its last line.
 *
 *   npm run bench:kt -- --leaves 1000000 --lookups 2000
 */
import 'reflect-metadata';
import { createHash } from 'node:crypto';
import { b64uDecode, b64uEncode, parseConsistencyProof, parseLookupResult, parseSth } from '@umbra/crypto';
import { createDataSource, createServiceApp, migrateDatabase, type ServiceApp } from '@umbra/server';
import { keyDirectoryService } from '../services/key-directory/src/key-directory.service';
import { KtSequencerService } from '../services/key-directory/src/kt/kt-sequencer.service';
import { numericArgs } from './support/args';

interface Args {
  leaves: number;
  lookups: number;
  batch: number;
  reuse: number;
}

function parseArgs(argv: string[]): Args {
  return numericArgs<Args>({ leaves: 1_000_000, lookups: 2000, batch: 10_000, reuse: 0 }, argv);
}

const log = (msg: string) => process.stderr.write(`[bench:kt] ${msg}\n`);
const PG = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432';
const DB = `${PG}/umbra_bench_kt`;

/** The label the SQL below gives statement i: md5(i) ‖ md5(i + 1), 32 bytes. */
function labelOf(i: number): Uint8Array {
  return Buffer.concat([createHash('md5').update(String(i)).digest(), createHash('md5').update(String(i + 1)).digest()]);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const admin = createDataSource(`${PG}/postgres`, 1);
  await admin.initialize();
  let existing = 0;
  if (args.reuse) {
    const found: { n: string }[] = await admin.query(`SELECT count(*) AS n FROM pg_database WHERE datname = 'umbra_bench_kt'`);
    if (Number(found[0]!.n) > 0) {
      const ds = createDataSource(DB, 1);
      await ds.initialize();
      existing = Number(((await ds.query(`SELECT coalesce(max(idx) + 1, 0) AS n FROM kt_leaves`)) as { n: string }[])[0]!.n);
      await ds.destroy();
    }
  }
  const generate = existing < args.leaves;
  if (generate) {
    await admin.query(`DROP DATABASE IF EXISTS umbra_bench_kt`);
    existing = 0;
  }
  await admin.destroy();
  await migrateDatabase(DB);

  const svc: ServiceApp = await createServiceApp(keyDirectoryService, {
    env: {
      NODE_ENV: 'test',
      DATABASE_URL: DB,
      DATABASE_POOL_SIZE: '8',
      REDIS_PREFIX: 'benchkt',
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      KT_SEQUENCE_INTERVAL_MS: '3600000',
      KT_STH_INTERVAL_MS: '3600000',
      KT_SEQUENCE_BATCH: String(args.batch),
      KT_LOOKUP_FLOOR_MS: '0',
      RATE_LIMIT_KT_LOOKUP_PER_IP_PER_MINUTE: '0',
    },
  });
  const seq = svc.app.get(KtSequencerService);
  const ds = createDataSource(DB, 2);
  await ds.initialize();

  let appendSeconds = 0;
  let appended = 0;
  if (generate) {
    log(`queueing ${args.leaves} statements`);
    const chunk = 100_000;
    for (let start = 0; start < args.leaves; start += chunk) {
      const end = Math.min(args.leaves, start + chunk) - 1;
      // A 32-byte label and a 160-byte opaque statement per row (the size of a one-device SignedDeviceList is ~170 bytes).
      await ds.query(
        `INSERT INTO kt_pending (type, account_id, version, statement)
         SELECT 1, decode(md5(i::text) || md5((i + 1)::text), 'hex'), 1, decode(repeat(md5(i::text), 10), 'hex')
         FROM generate_series($1::bigint, $2::bigint) AS i ORDER BY i`,
        [start, end],
      );
    }
    log(`appending in batches of ${args.batch}`);
    const t0 = performance.now();
    for (;;) {
      const r = await seq.sequence();
      appended += r.appended;
      if (r.ran && r.appended === 0) break;
      if (appended % 100_000 < args.batch) log(`${appended} leaves, ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    appendSeconds = (performance.now() - t0) / 1000;
  } else {
    await seq.sequence();
  }
  await ds.query('ANALYZE kt_leaves');
  await ds.query('ANALYZE kt_nodes');

  const origin = svc.url;
  const get = async (path: string) => {
    const res = await fetch(`${origin}${path}`);
    if (res.status !== 200) throw new Error(`${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as Record<string, string>;
  };
  const sth = parseSth(b64uDecode((await get('/v1/kt/sth')).sth!));
  const size = sth.head.treeSize;
  log(`tree size ${size}; ${args.lookups} lookups`);
  for (let i = 0; i < 50; i++) await get(`/v1/kt/lookup?type=1&label=${b64uEncode(labelOf(Math.floor(Math.random() * args.leaves)))}`);
  const times: number[] = [];
  let resultBytes = 0;
  let pathLen = 0;
  for (let i = 0; i < args.lookups; i++) {
    const label = b64uEncode(labelOf(Math.floor(Math.random() * args.leaves)));
    const t = performance.now();
    const body = await get(`/v1/kt/lookup?type=1&label=${label}`);
    times.push(performance.now() - t);
    const bytes = b64uDecode(body.result!);
    resultBytes = Math.max(resultBytes, bytes.length);
    pathLen = Math.max(pathLen, parseLookupResult(bytes).inclusion.length);
  }
  times.sort((x, y) => x - y);
  const cons: number[] = [];
  for (const first of [1, Math.floor(size / 3), size - 1].filter((x) => x >= 1)) {
    cons.push(b64uDecode((await get(`/v1/kt/consistency?first=${first}&second=${size}`)).proof!).length);
    parseConsistencyProof(b64uDecode((await get(`/v1/kt/consistency?first=${first}&second=${size}`)).proof!));
  }
  const db = (await ds.query(`SELECT pg_database_size('umbra_bench_kt')::float8 AS b`)) as { b: number }[];
  const result = {
    bench: 'kt',
    treeSize: size,
    appended,
    appendSeconds: Number(appendSeconds.toFixed(1)),
    appendLeavesPerSecond: appended > 0 ? Math.round(appended / appendSeconds) : null,
    batch: args.batch,
    lookups: args.lookups,
    lookupP50Ms: Number(percentile(times, 50).toFixed(2)),
    lookupP99Ms: Number(percentile(times, 99).toFixed(2)),
    lookupMaxMs: Number(times[times.length - 1]!.toFixed(2)),
    sthBytes: sth.bytes.length,
    lookupResultBytes: resultBytes,
    inclusionPathHashes: pathLen,
    consistencyProofBytes: cons,
    databaseMiB: Math.round(db[0]!.b / 1024 / 1024),
  };
  await ds.destroy();
  await svc.app.close();
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});

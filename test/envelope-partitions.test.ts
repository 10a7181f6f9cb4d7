import { randomBytes } from 'node:crypto';
import { DataSource } from 'typeorm';
import {
  createDataSource,
  DEFAULT_ENVELOPE_PARTITIONS,
  DeviceQueueRepository,
  HotStatements,
  ENV_SCHEMA,
  EnvelopeSealer,
  EnvelopeStoreRepository,
  ExpiryKeysRepository,
  migrationsFor,
  runMigrations,
  type DeviceAddress,
} from '@umbra/server';
import { recreateDatabase } from '../bench/support/fresh-database';
import { TEST_DATABASE_URL } from './support/harness';
import { executedPlans, partitionsRead } from './support/plans';

// A database of its own: this test migrates down and up, which the shared test database must not see.
const URL_ = (() => {
  const u = new URL(TEST_DATABASE_URL);
  u.pathname = `${u.pathname}_partitions`;
  return u.toString();
})();
const PARTITIONS = 8;
const MIGRATION = 'EnvelopePartitions1764000800000';
const DAY = 86_400_000;

/**
 * Stands in for the DataSource of a repository: runs each statement once with auto_explain in a
 * rolled-back transaction (so the plans are the executed ones, with run-time pruning, including
 * those of statements inside a function), then for real.
 */
function explaining(ds: DataSource, plans: { sql: string; read: Set<string> }[]): DataSource {
  const query = async (sql: string, params?: unknown[]) => {
    const executed = await executedPlans(ds, sql, params);
    plans.push({ sql, read: new Set(executed.flatMap((p) => [...partitionsRead(p.plan)])) });
    return ds.query(sql, params);
  };
  return { query } as unknown as DataSource;
}

describe('envelopes hash-partitioned by recipient account (real Postgres)', () => {
  let ds: DataSource;
  const sender: DeviceAddress = { accountId: randomBytes(32), deviceId: 1 };
  const recipients: DeviceAddress[] = Array.from({ length: 24 }, (_, i) => ({ accountId: randomBytes(32), deviceId: 1 + (i % 3) }));
  const partitionOf = async (a: Uint8Array) =>
    ((await ds.query(`SELECT DISTINCT tableoid::regclass::text AS p FROM envelopes WHERE recipient_account = $1`, [a])) as { p: string }[]).map((r) => r.p);
  const snapshot = async () => ({
    rows: await ds.query(`SELECT seq::text, recipient_account, recipient_device, sender_account, sender_device, client_message_id, type, content,
                                 server_timestamp, expires_at, read_ttl_s, delete_at, key_window FROM envelopes ORDER BY seq`),
    queues: await ds.query(`SELECT recipient_account, recipient_device, envelopes::int, bytes::int FROM device_queues ORDER BY 1, 2`),
  });
  let before: Awaited<ReturnType<typeof snapshot>>;

  beforeAll(async () => {
    await recreateDatabase(URL_);
    const all = migrationsFor({ envelopePartitions: PARTITIONS });
    const at = all.findIndex((M) => new M().name === MIGRATION);
    expect(at).toBeGreaterThan(0);
    const earlier = new DataSource({ type: 'postgres', url: URL_, migrations: all.slice(0, at), migrationsTableName: 'umbra_migrations' });
    await earlier.initialize();
    try {
      await runMigrations(earlier);
      // Rows as the unpartitioned table held them: interleaved recipients, so seq order is not per partition.
      for (let round = 0; round < 3; round++) {
        for (const r of recipients) {
          await earlier.query(
            `INSERT INTO envelopes (recipient_account, recipient_device, sender_account, sender_device, client_message_id, type, content,
                                    server_timestamp, expires_at, read_ttl_s, delete_at, key_window)
             VALUES ($1, $2, $3, 1, $4, 2, $5, $6, $7, 0, $8, 0)`,
            [r.accountId, r.deviceId, sender.accountId, randomBytes(16), randomBytes(10 + round), 1000 + round, round === 2 ? 5000 : 0, Date.now() + DAY],
          );
        }
      }
    } finally {
      await earlier.destroy();
    }
    ds = createDataSource(URL_, 4, { envelopePartitions: PARTITIONS });
    await ds.initialize();
    before = await snapshot();
    expect(before.rows).toHaveLength(recipients.length * 3);
    expect(await runMigrations(ds)).toContain(MIGRATION);
  });
  afterAll(() => ds?.destroy());

  it('ENVELOPE_PARTITIONS is validated, 16 by default', () => {
    const key = ENV_SCHEMA.shape.ENVELOPE_PARTITIONS;
    expect(key.parse(undefined)).toBe(DEFAULT_ENVELOPE_PARTITIONS);
    expect(DEFAULT_ENVELOPE_PARTITIONS).toBe(16);
    expect(key.parse('64')).toBe(64);
    for (const bad of ['0', '-1', '2.5', '1025', 'x']) expect(key.safeParse(bad).success).toBe(false);
    expect(() => migrationsFor({ envelopePartitions: 0 }).map((M) => new M())).toThrow(/ENVELOPE_PARTITIONS/);
  });

  it('makes ENVELOPE_PARTITIONS hash partitions keyed by recipient account, primary key (account, device, seq)', async () => {
    const [t] = (await ds.query(`SELECT c.relkind, pg_get_partkeydef(c.oid) AS key FROM pg_class c WHERE c.relname = 'envelopes'`)) as { relkind: string; key: string }[];
    expect(t).toEqual({ relkind: 'p', key: 'HASH (recipient_account)' });
    const [n] = (await ds.query(`SELECT count(*)::int AS n FROM pg_inherits WHERE inhparent = 'envelopes'::regclass`)) as { n: number }[];
    expect(n!.n).toBe(PARTITIONS);
    const [pk] = (await ds.query(`SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = 'envelopes'::regclass AND contype = 'p'`)) as { def: string }[];
    expect(pk!.def).toBe('PRIMARY KEY (recipient_account, recipient_device, seq)');
    const triggers = (await ds.query(`SELECT tgname FROM pg_trigger WHERE tgrelid = 'envelopes'::regclass AND NOT tgisinternal ORDER BY 1`)) as { tgname: string }[];
    // Only inserts count since QueueCountsUpperBound1764000900000 (the migration after this one) dropped envelopes_count_out.
    expect(triggers.map((x) => x.tgname)).toEqual(['envelopes_count_in']);
  });

  it('keeps every row, its seq and the queue counters; each account in the one partition its hash names', async () => {
    expect(await snapshot()).toEqual(before);
    const misplaced = (await ds.query(
      `SELECT count(*)::int AS n FROM envelopes e JOIN pg_inherits i ON i.inhrelid = e.tableoid
       JOIN pg_class c ON c.oid = i.inhrelid
       WHERE NOT satisfies_hash_partition('envelopes'::regclass, $1, substring(c.relname FROM 'envelopes_p([0-9]+)')::int, e.recipient_account)`,
      [PARTITIONS],
    )) as { n: number }[];
    expect(misplaced[0]!.n).toBe(0);
    for (const r of recipients) expect(await partitionOf(r.accountId)).toHaveLength(1);
    const used = (await ds.query(`SELECT count(DISTINCT tableoid)::int AS n FROM envelopes`)) as { n: number }[];
    expect(used[0]!.n).toBeGreaterThan(1);
  });

  it('new sends continue the seq sequence, land in their recipient account partition and are counted', async () => {
    const sealer = new EnvelopeSealer(new ExpiryKeysRepository(ds), 60_000);
    const store = new EnvelopeStoreRepository(ds, sealer);
    const queues = new DeviceQueueRepository(ds, sealer);
    const r = recipients[5]!;
    const now = Date.now();
    const [res] = await store.storeBatch(
      [{ sender, clientMessageId: randomBytes(16), expiresAt: 0, readTtlS: 0, recipients: [{ ...r, type: 2, content: randomBytes(40) }] }],
      now,
      DAY,
      { envelopes: 1000, bytes: 1 << 20 },
    );
    const seq = res!.envelopes[0]!.seq;
    const maxBefore = (before.rows as { seq: string }[]).map((x) => BigInt(x.seq)).reduce((a, b) => (a > b ? a : b));
    expect(BigInt(seq)).toBeGreaterThan(maxBefore);
    expect(await partitionOf(r.accountId)).toHaveLength(1);
    expect(await queues.queueDepth(r)).toBe(4);
    const counter = async () =>
      ((await ds.query(`SELECT envelopes::int AS n FROM device_queues WHERE recipient_account = $1 AND recipient_device = $2`, [r.accountId, r.deviceId])) as { n: number }[])[0]!.n;
    expect(await counter()).toBe(4);
    expect(await queues.ack([{ recipient: r, seqs: [seq] }])).toBe(1);
    // An upper bound: deletes do not lower it (a capped store recounts a queue that looks full).
    expect(await counter()).toBe(4);
    expect(await queues.queueDepth(r)).toBe(3);
  });

  it('the device-queue statements read one partition', async () => {
    const plans: { sql: string; read: Set<string> }[] = [];
    const sealer = new EnvelopeSealer(new ExpiryKeysRepository(ds), 60_000);
    const traced = explaining(ds, plans);
    // Unprepared, so that every statement passes through the EXPLAIN wrapper (a named one runs the same text).
    const queues = new DeviceQueueRepository(traced, sealer, new HotStatements(traced, false));
    const store = new EnvelopeStoreRepository(traced, sealer, new HotStatements(traced, false));
    const r: DeviceAddress = { accountId: randomBytes(32), deviceId: 2 };
    const now = Date.now();
    await new EnvelopeStoreRepository(ds, sealer).storeBatch(
      [0, 60, 0].map((readTtlS) => ({ sender, clientMessageId: randomBytes(16), expiresAt: 0, readTtlS, recipients: [{ ...r, type: 2, content: randomBytes(30) }] })),
      now,
      DAY,
    );
    const [home] = await partitionOf(r.accountId);
    const page = await queues.fetchPage(r, '0', 10, now);
    const seqs = page.envelopes.map((e) => e.seq);
    expect(seqs).toHaveLength(3);
    await queues.queueHeads([r], now);
    await queues.stillStored([{ recipient: r, seqs }]);
    await queues.queueDepth(r);
    await queues.lowerOnRead(r, seqs, now);
    await store.queuedCopies([{ recipient: r, message: { sender, clientMessageId: page.envelopes[0]!.clientMessageId } }], now);
    await queues.ack([{ recipient: r, seqs: [seqs[0]!] }]);
    expect(plans.map((p) => p.sql.trim().split(/\s+/)[0])).toEqual(['SELECT', 'SELECT', 'SELECT', 'SELECT', 'SELECT', 'UPDATE', 'SELECT', 'SELECT']);
    for (const p of plans) expect({ sql: p.sql, read: [...p.read] }).toEqual({ sql: p.sql, read: [home] });
  });

  it('migrating down restores the plain table with every row, its indexes and triggers', async () => {
    const now = await snapshot();
    while (true) {
      const [last] = (await ds.query(`SELECT name FROM umbra_migrations ORDER BY id DESC LIMIT 1`)) as { name: string }[];
      await ds.undoLastMigration({ transaction: 'each' });
      if (last!.name === MIGRATION) break;
    }
    const [t] = (await ds.query(`SELECT relkind FROM pg_class WHERE relname = 'envelopes'`)) as { relkind: string }[];
    expect(t!.relkind).toBe('r');
    const parts = (await ds.query(`SELECT count(*)::int AS n FROM pg_class WHERE relname ~ '^envelopes_p[0-9]+$'`)) as { n: number }[];
    expect(parts[0]!.n).toBe(0);
    const back = await snapshot();
    expect(back.rows).toEqual(now.rows);
    // QueueCountsUpperBound's down made the counters exact again, and its delete trigger is back.
    const counted = (await ds.query(
      `SELECT q.envelopes::int AS kept, (SELECT count(*)::int FROM envelopes e WHERE e.recipient_account = q.recipient_account AND e.recipient_device = q.recipient_device) AS actual
       FROM device_queues q`,
    )) as { kept: number; actual: number }[];
    expect(counted.length).toBeGreaterThan(recipients.length - 1);
    for (const c of counted) expect(c.kept).toBe(c.actual);
    const triggers = (await ds.query(`SELECT tgname FROM pg_trigger WHERE tgrelid = 'envelopes'::regclass AND NOT tgisinternal ORDER BY 1`)) as { tgname: string }[];
    expect(triggers.map((x) => x.tgname)).toEqual(['envelopes_count_in', 'envelopes_count_out']);
    const indexes = (await ds.query(`SELECT indexname FROM pg_indexes WHERE tablename = 'envelopes' ORDER BY 1`)) as { indexname: string }[];
    expect(indexes.map((i) => i.indexname)).toEqual(['envelopes_delete_at', 'envelopes_message', 'envelopes_pkey', 'envelopes_queue']);
    const r = recipients[0]!;
    await ds.query(
      `INSERT INTO envelopes (recipient_account, recipient_device, client_message_id, type, content, server_timestamp, delete_at) VALUES ($1, $2, $3, 5, $4, 1, $5)`,
      [r.accountId, r.deviceId, randomBytes(16), randomBytes(7), Date.now() + DAY],
    );
    const [q] = (await ds.query(`SELECT envelopes::int AS n FROM device_queues WHERE recipient_account = $1 AND recipient_device = $2`, [r.accountId, r.deviceId])) as { n: number }[];
    expect(q!.n).toBe(4);
    const [seq] = (await ds.query(`SELECT max(seq)::text AS s FROM envelopes`)) as { s: string }[];
    expect(BigInt(seq!.s)).toBeGreaterThan(BigInt((now.rows as { seq: string }[]).at(-1)!.seq));
  });
});

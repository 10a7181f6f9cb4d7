import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { DataSource } from 'typeorm';
import { DeviceQueueRepository, EnvelopeSealer, ExpiryKeysRepository, HotStatements, migrationsFor, runMigrations, type DeviceAddress } from '@umbra/server';
import { recreateDatabase } from '../bench/support/fresh-database';
import { TEST_DATABASE_URL } from './support/harness';
import { collectPlans, explainEverything, partitionsRead, planNodes, type ExecutedPlan } from './support/plans';

// A database of its own: the test fills `envelopes` and reads plans, which other suites' rows would blur.
const URL_ = (() => {
  const u = new URL(TEST_DATABASE_URL);
  u.pathname = `${u.pathname}_ackplan`;
  return u.toString();
})();

const DEVICES = 60;
const PER_DEVICE = 100;

/**
 * Acks with thousands of rows queued: the delete must probe each acked id by primary key in its
 * account's partition, also once the named statement runs its generic plan. A planner-chosen join
 * hashed the ids and scanned whole partitions (all of them under the generic plan): 120–150 ms for
 * 400 ids against 23,000 rows, where index probes take 2–5 ms.
 */
describe('ack deletes by primary key (real Postgres, thousands of rows queued)', () => {
  let ds: DataSource;
  let pool: pg.Pool;
  let client: pg.PoolClient;
  const devices: DeviceAddress[] = Array.from({ length: DEVICES }, (_, i) => ({ accountId: randomBytes(32), deviceId: 1 + (i % 3) }));
  const seqsOf = new Map<DeviceAddress, string[]>();
  const partitionOf = new Map<DeviceAddress, string>();

  beforeAll(async () => {
    await recreateDatabase(URL_);
    ds = new DataSource({ type: 'postgres', url: URL_, migrations: migrationsFor(), migrationsTableName: 'umbra_migrations' });
    await ds.initialize();
    await runMigrations(ds);
    await ds.query(
      `INSERT INTO envelopes (recipient_account, recipient_device, sender_account, sender_device, client_message_id, type, content,
                              server_timestamp, expires_at, read_ttl_s, delete_at, key_window)
       SELECT x.a, x.d, $3, 1, gen_random_uuid()::text::bytea, 2, '\\x00'::bytea, 0, 0, 0, 9e15, 0
       FROM unnest($1::bytea[], $2::bigint[]) AS x(a, d), generate_series(1, ${PER_DEVICE})`,
      [devices.map((d) => d.accountId), devices.map((d) => d.deviceId), randomBytes(32)],
    );
    await ds.query('ANALYZE envelopes');
    for (const d of devices) {
      const rows = (await ds.query(`SELECT seq::text AS seq, tableoid::regclass::text AS p FROM envelopes WHERE recipient_account = $1 AND recipient_device = $2 ORDER BY seq`, [
        d.accountId,
        d.deviceId,
      ])) as { seq: string; p: string }[];
      seqsOf.set(d, rows.map((r) => r.seq));
      partitionOf.set(d, rows[0]!.p);
    }
    // One connection, so that every execution of the named statement runs where auto_explain is on.
    pool = new pg.Pool({ connectionString: URL_, max: 1 });
    client = await pool.connect();
  });

  afterAll(async () => {
    client?.release();
    await pool?.end();
    await ds?.destroy();
  });

  it('probes each id by primary key in its own partition, under custom and generic plans alike', async () => {
    const hot = new HotStatements({ driver: { master: { query: (q: pg.QueryConfig) => client.query(q) } } } as unknown as DataSource, true);
    const queues = new DeviceQueueRepository(ds, new EnvelopeSealer(new ExpiryKeysRepository(ds), 60_000), hot);
    const seen = collectPlans(client);
    try {
      // Eight rounds: Postgres plans a named statement afresh five times, then may keep a generic plan.
      for (let round = 0; round < 8; round++) {
        const batch = devices.slice(round * 5, round * 5 + 20);
        const items = batch.map((d) => ({ recipient: d, seqs: seqsOf.get(d)!.slice(round * 10, round * 10 + 10) }));
        seen.plans.length = 0;
        await client.query('BEGIN');
        await explainEverything(client);
        const deleted = await queues.ack(items);
        await client.query('COMMIT');
        expect(deleted).toBe(200);

        const deletes = seen.plans.filter((p: ExecutedPlan) => p.queryText.trimStart().startsWith('DELETE FROM envelopes'));
        expect(deletes).toHaveLength(1);
        const nodes = planNodes(deletes[0]!.plan).map((n) => n['Node Type']);
        expect(nodes).not.toContain('Seq Scan');
        expect(nodes).not.toContain('Hash Join');
        expect(nodes).not.toContain('Merge Join');
        expect(nodes).toContain('Index Scan');
        expect([...partitionsRead(deletes[0]!.plan)].sort()).toEqual([...new Set(batch.map((d) => partitionOf.get(d)!))].sort());
      }
    } finally {
      seen.stop();
    }
  });

  it("deletes only the acking device's own rows", async () => {
    const queues = new DeviceQueueRepository(ds, new EnvelopeSealer(new ExpiryKeysRepository(ds), 60_000));
    const [owner, other] = [devices[50]!, devices[51]!];
    const theirs = seqsOf.get(owner)!.slice(90, 95);
    // Someone else's ids, and ids that exist nowhere, delete nothing.
    expect(await queues.ack([{ recipient: other, seqs: theirs }])).toBe(0);
    expect(await queues.ack([{ recipient: { ...owner, deviceId: owner.deviceId + 10 }, seqs: theirs }])).toBe(0);
    expect(await queues.ack([{ recipient: owner, seqs: ['999999999999'] }])).toBe(0);
    const count = async (d: DeviceAddress) =>
      Number(((await ds.query('SELECT count(*) AS n FROM envelopes WHERE recipient_account = $1 AND recipient_device = $2', [d.accountId, d.deviceId])) as { n: string }[])[0]!.n);
    const before = await count(owner);
    expect(await queues.ack([{ recipient: owner, seqs: [...theirs, ...theirs] }])).toBe(5);
    expect(await count(owner)).toBe(before - 5);
    expect(await queues.stillStored([{ recipient: owner, seqs: [...theirs, seqsOf.get(owner)![99]!] }])).toEqual([{ recipient: { accountId: owner.accountId, deviceId: owner.deviceId }, seq: seqsOf.get(owner)![99]! }]);
  });
});

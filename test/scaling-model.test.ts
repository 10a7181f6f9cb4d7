import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import { DEFAULT_ASSUMPTIONS, DEFAULT_DEVICES, assumptionsTable, benchInputs, model, parseArgs, perUnit, render } from '../bench/scaling-model';
import { PgStats } from '../bench/support/pg-stats';
import { TEST_DATABASE_URL } from './support/harness';

const ROOT = process.cwd();
const FIXTURE = path.join(ROOT, 'bench', 'fixtures', 'delivery-2core.json');
const DOC = path.join(ROOT, 'docs', 'scaling.md');
const fixture = readFileSync(FIXTURE, 'utf8');
const inputs = benchInputs(fixture);

const block = (name: string) => new RegExp(`(<!-- generated:${name} -->\\n)([\\s\\S]*?)(\\n<!-- /generated:${name} -->)`);
const table = () => render(DEFAULT_DEVICES.map((d) => model(d, inputs, DEFAULT_ASSUMPTIONS)), inputs, DEFAULT_ASSUMPTIONS);
const GENERATED = { 'scaling-model': table, 'scaling-assumptions': assumptionsTable };
if (process.env.UMBRA_WRITE_DOCS === '1' && existsSync(DOC)) {
  let doc = readFileSync(DOC, 'utf8');
  for (const [name, body] of Object.entries(GENERATED)) doc = doc.replace(block(name), (_m, open: string, _old: string, close: string) => `${open}${body()}${close}`);
  writeFileSync(DOC, doc);
}

describe('load model (bench/scaling-model.ts)', () => {
  it('reads the per-message costs of the steady phase, and the marginal memory per socket', () => {
    expect(inputs).toMatchObject({ gatewayMs: 0.4732, relayMs: 0.4353, redisMs: 0.1642, pgMs: 0.4289, connBytes: 4116, envelopeBytes: 200, cpus: 2 });
    expect(inputs).toMatchObject({ rowsPerSend: 2, rowsPerDelivery: 3, rowsSource: 'design' });
  });

  it('computes 10^6 devices at the defaults as worked out by hand', () => {
    const r = model(1e6, inputs, DEFAULT_ASSUMPTIONS);
    // 10^6 / 1.5 devices per user × 50 sends per user per day / 86,400 s × peak 4.
    expect(r.peakSendsPerS).toBeCloseTo(1543.21, 2);
    // Each send: 3 recipient users × 1.5 devices + the sender's 0.5 other devices = 5 deliveries.
    expect(r.peakDeliveriesPerS).toBeCloseTo(7716.05, 2);
    expect(r.connected).toBe(500_000);
    // Per-message cost, half per send and half per delivery: × (0.5 × 1543.21 + 0.5 × 7716.05) = × 4629.63 /s.
    // Gateway CPU: 0.4732 × 4629.63 = 2190.74 ms/s + 500,000 sockets × 2 µs/s = 1000 ms/s → 3190.74 / 600 = 5.318 pods;
    // memory: 500,000 × 4116 B / (512 MiB × 0.6 − 100 MiB = 217,265,766 B) = 9.472 pods → 10, memory binds.
    expect(r.gateway.need.cpu).toBeCloseTo(5.318, 3);
    expect(r.gateway.need.memory).toBeCloseTo(9.472, 3);
    expect(r.gateway).toMatchObject({ count: 10, binding: 'memory' });
    // Relay: 0.4353 × 4629.63 = 2015.28 ms/s / 600 = 3.359 → 4.
    expect(r.relay.need.cpu).toBeCloseTo(3.359, 3);
    expect(r.relay).toMatchObject({ count: 4, binding: 'cpu' });
    // Redis: 0.1642 × 4629.63 = 760.19 ms/s + 500,000 / 30 s × 10 µs = 166.67 ms/s → 926.85 / 600 = 1.545:
    // more than one shard, so a cluster of three; memory 500,000 × 256 B / (16 GiB × 0.6) = 0.0124.
    expect(r.redis.need.cpu).toBeCloseTo(1.545, 3);
    expect(r.redis.need.memory).toBeCloseTo(0.0124, 4);
    expect(r.redis).toMatchObject({ count: 3, binding: 'cpu' });
    // Postgres rows: 1543.21 × 2 + 7716.05 × 3 = 26,234.6/s → 0.2623 of a worker at 100,000/s;
    // CPU: 0.4289 × 4629.63 = 1985.65 + 500,000 / 15 s × 5 µs = 166.67 → 2152.31 / (16 × 600) = 0.2242;
    // storage: 33,333,333 sends/day × 30 d × 200 B = 200 GB + 33,333,333 × 5 × 0.5 offline × 0.5 day
    // × (200 + 28 + 150) B = 15.75 GB → 215.75 GB / 1.2 TB = 0.1798. One primary, rows/s binding.
    expect(r.postgres.rowsPerS).toBeCloseTo(26_234.57, 1);
    expect(r.postgres.need['rows/s']).toBeCloseTo(0.2623, 4);
    expect(r.postgres.need.cpu).toBeCloseTo(0.2242, 4);
    expect(r.postgres.storageBytes).toBeCloseTo(215.75e9, -6);
    expect(r.postgres).toMatchObject({ count: 1, binding: 'rows/s' });
    // One Redis core serves 10^6 / 1.545 devices; one Postgres primary 10^6 / 0.2623.
    expect(perUnit(r, r.redis)).toBeCloseTo(647_353, -1);
    expect(perUnit(r, r.postgres)).toBeCloseTo(3_811_765, -1);
  });

  it('scales every load with the devices, and keeps at least two pods of each service', () => {
    const small = model(1e6, inputs, DEFAULT_ASSUMPTIONS);
    const big = model(1e8, inputs, DEFAULT_ASSUMPTIONS);
    expect(big.gateway.need.memory! / small.gateway.need.memory!).toBeCloseTo(100, 6);
    expect(big.postgres.rowsPerS / small.postgres.rowsPerS).toBeCloseTo(100, 6);
    const tiny = model(1000, inputs, DEFAULT_ASSUMPTIONS);
    expect([tiny.gateway.count, tiny.relay.count, tiny.redis.count, tiny.postgres.count]).toEqual([2, 2, 1, 1]);
  });

  it("uses the bench's measured Postgres rows when it has them (the send record's insert counted once)", () => {
    const last = JSON.parse(fixture.trim().split('\n').pop()!);
    last.steady.pgRowsPerMsg = { inserted: 2, updated: 1.5, deleted: 1 };
    const measured = benchInputs(`{"level":"warn","msg":"a log line first"}\n${JSON.stringify(last)}\n`);
    expect(measured).toMatchObject({ rowsPerSend: 2, rowsPerDelivery: 3.5, rowsSource: 'measured' });
    last.steady.pgRowsPerMsg = { inserted: null, updated: null, deleted: null };
    expect(benchInputs(JSON.stringify(last))).toMatchObject({ rowsPerDelivery: 3, rowsSource: 'design' });
    expect(() => benchInputs(JSON.stringify({ ...last, mode: 'batch' }))).toThrow(/not a realistic delivery bench result: mode/);
    expect(() => benchInputs('no json here')).toThrow(/no JSON line/);
  });

  it('takes assumptions as flags and refuses unknown or negative ones', () => {
    const a = parseArgs(['--bench', 'x.json', '--peak-ratio', '5', '--devices', '1e6,2e6', '--pg-worker-rows-per-s', '50000']);
    expect(a).toMatchObject({ bench: 'x.json', devices: [1e6, 2e6], help: false });
    expect(a.assumptions).toEqual({ ...DEFAULT_ASSUMPTIONS, peakRatio: 5, pgWorkerRowsPerS: 50_000 });
    expect(() => parseArgs(['--peak', '5'])).toThrow(/unknown option --peak/);
    expect(() => parseArgs(['--fanout', '-1'])).toThrow(/non-negative/);
    expect(() => parseArgs(['--devices', '1e6,x'])).toThrow(/non-negative/);
    expect(() => parseArgs(['--fanout'])).toThrow(/needs a value/);
    expect(() => parseArgs(['--cpu-target', '0'])).toThrow(/--cpu-target must be > 0/);
    expect(() => parseArgs(['--connected', '1.5'])).toThrow(/--connected is a share/);
  });

  it('docs/scaling.md shows the table of the committed fixture at the defaults, and the assumptions', () => {
    const hint = 'regenerate with: UMBRA_WRITE_DOCS=1 node --experimental-vm-modules node_modules/jest/bin/jest.js test/scaling-model.test.ts --selectProjects integration';
    const doc = readFileSync(DOC, 'utf8');
    for (const [name, body] of Object.entries(GENERATED)) expect(`${block(name).exec(doc)?.[2]}\n(${hint})`).toBe(`${body()}\n(${hint})`);
  });

  it('runs as a script: the table, then one JSON line; exit code 2 on a bad option', () => {
    const script = path.join(ROOT, 'dist', 'bench', 'scaling-model.js');
    const ok = spawnSync(process.execPath, [script, '--bench', FIXTURE], { encoding: 'utf8' });
    expect(ok.status).toBe(0);
    const lines = ok.stdout.trim().split('\n');
    expect(`${lines.slice(0, -1).join('\n')}`).toBe(table());
    expect(JSON.parse(lines.at(-1)!).rows.map((r: { gateway: { count: number } }) => r.gateway.count)).toEqual([10, 95, 948]);
    const bad = spawnSync(process.execPath, [script, '--bench', FIXTURE, '--peak', '3'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/unknown option --peak/);
  });
});

describe('Postgres rows per message (bench/support/pg-stats.ts, real Postgres)', () => {
  it('counts the rows a database inserted, updated and deleted between two reads', async () => {
    const stats = await PgStats.open(TEST_DATABASE_URL);
    const c = new Client({ connectionString: TEST_DATABASE_URL });
    await c.connect();
    try {
      await c.query('CREATE TEMP TABLE pg_stats_probe (x int)');
      const before = await stats.read();
      await c.query('INSERT INTO pg_stats_probe SELECT generate_series(1, 30)');
      await c.query('UPDATE pg_stats_probe SET x = -x WHERE x <= 5');
      await c.query('DELETE FROM pg_stats_probe WHERE x > 20');
      // A backend publishes its counters when a transaction ends at least a second after its last
      // report (an idle one only 10 s later): a statement every 100 ms makes it report.
      let after = await stats.read();
      const seen = () => after.inserted - before.inserted >= 30 && after.updated - before.updated >= 5 && after.deleted - before.deleted >= 10;
      for (let i = 0; i < 40 && !seen(); i++) {
        await new Promise((r) => setTimeout(r, 100));
        await c.query('SELECT 1');
        after = await stats.read();
      }
      expect(after.inserted - before.inserted).toBeGreaterThanOrEqual(30);
      expect(after.updated - before.updated).toBeGreaterThanOrEqual(5);
      expect(after.deleted - before.deleted).toBeGreaterThanOrEqual(10);
      expect(after.commits - before.commits).toBeGreaterThanOrEqual(3);
    } finally {
      await c.end();
      await stats.close();
    }
    const per = PgStats.perMessage({ inserted: 100, updated: 10, deleted: 0, commits: 50 }, { inserted: 300, updated: 60, deleted: 100, commits: 150 }, 100, 10);
    expect(per).toEqual({ pgRowsPerMsg: { inserted: 2, updated: 0.5, deleted: 1 }, pgCommitsPerS: 10 });
  });
});

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { migrateDatabase } from '@umbra/server';
import { freePort, isPortOpen, startPrivatePostgres, startPrivateRedis, type PrivateServer } from '../../scripts/lib/local-databases';
import { startEmbeddedS3 } from '../../scripts/lib/embedded-s3';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy';
import { History, type FaultReport, type Violation } from './support/history';
import { LoadDriver, type LoadDevice } from './support/load';
import { ProcessDriver } from './support/processes';

/**
 * Fault injection against the real system: every service its own OS process (2 gateways, 2 relays,
 * one of each other), behind the edge, on a private Redis and Postgres reached through TCP fault
 * proxies. SDK clients send and acknowledge under a bounded load while one fault at a time (then
 * several at once) is injected; after each, the history checker must find nothing lost, nothing
 * shown twice, no vanished message delivered late and no envelope at the wrong device.
 * Prints one JSON line per fault. Needs `npx tsc -b tsconfig.build.json` first (npm test does it).
 */
const heavy = process.env.UMBRA_HEAVY === '1' ? describe : describe.skip;

const ROOT = process.cwd();
const DIST = path.join(ROOT, 'dist');
const FAKETIME_LIBS = ['/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1', '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1', '/usr/lib/faketime/libfaketime.so.1'];
/** BullMQ's default lock duration: a relay stopped longer than this loses its jobs' locks. */
const BULLMQ_LOCK_MS = 30_000;
const LATE_GRACE_MS = 1000;
const SWEEP_INTERVAL_MS = 1000;
const BOOT_TIMEOUT_MS = 180_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface PhaseResult extends FaultReport {
  /** From the "stored" answer to the first receipt, over the fault's delivered pairs. */
  deliveryMsP50: number;
  deliveryMsMax: number;
  unsettled: number;
  lostStillQueued: number;
  recoveredByReconnect: number;
  unexpectedExits: string[];
  ms: number;
}

heavy('fault injection: nothing acknowledged is lost', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'umbra-chaos-'));
  const history = new History();
  const results: PhaseResult[] = [];
  let postgres: PrivateServer | undefined;
  let redis: PrivateServer | undefined;
  let pgPort = 0;
  let redisPort = 0;
  let redisProxy: FaultProxy;
  let pgProxy: FaultProxy;
  let driver: ProcessDriver;
  let load: LoadDriver;
  let closeS3: (() => Promise<void>) | undefined;
  let admin: Redis | undefined;
  let pgUrl = '';

  const lastResort = () => {
    driver?.killAllNow();
    postgres?.kill('SIGKILL');
    redis?.kill('SIGKILL');
    if (process.env.UMBRA_CHAOS_KEEP !== '1') fs.rmSync(tmp, { recursive: true, force: true });
  };
  process.once('exit', lastResort);

  const startPostgres = () => startPrivatePostgres({ dir: path.join(tmp, 'postgres'), port: pgPort, args: ['-c', 'fsync=off', '-c', 'synchronous_commit=off'] });
  const startRedis = () => startPrivateRedis({ dir: path.join(tmp, 'redis'), port: redisPort });

  const adminRedis = (): Redis => {
    if (!admin) {
      admin = new Redis(`redis://127.0.0.1:${redisPort}`, { maxRetriesPerRequest: 2 });
      admin.on('error', () => undefined);
    }
    return admin;
  };
  const sql = async <T = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<T[]> => {
    const c = new pg.Client({ connectionString: pgUrl });
    await c.connect();
    try {
      return (await c.query(text, params)).rows as T[];
    } finally {
      await c.end();
    }
  };
  const terminateServiceConnections = () =>
    sql(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'`);

  beforeAll(async () => {
    if (!fs.existsSync(path.join(DIST, 'services', 'gateway', 'src', 'main.js'))) throw new Error('dist/ is missing: run `npx tsc -b tsconfig.build.json` first');
    pgPort = await freePort();
    redisPort = await freePort();
    [postgres, redis] = await Promise.all([startPostgres(), startRedis()]);
    pgUrl = postgres.url;
    await migrateDatabase(pgUrl);
    redisProxy = await startFaultProxy({ name: 'redis', target: { host: '127.0.0.1', port: redisPort } });
    pgProxy = await startFaultProxy({ name: 'postgres', target: { host: '127.0.0.1', port: pgPort } });
    const s3 = await startEmbeddedS3({ port: 0, host: '127.0.0.1', directory: path.join(tmp, 's3'), bucket: 'umbra-chaos' });
    closeS3 = s3.close;

    driver = new ProcessDriver({
      distDir: DIST,
      logDir: path.join(tmp, 'logs'),
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        NODE_ENV: 'test',
        LOG_LEVEL: 'info',
        DATABASE_URL: `postgres://postgres@127.0.0.1:${pgProxy.port}/postgres`,
        DATABASE_POOL_SIZE: '4',
        REDIS_URL: `redis://127.0.0.1:${redisProxy.port}`,
        REDIS_PREFIX: 'chaos',
        POW_DIFFICULTY: '4',
        SHUTDOWN_GRACE_MS: '2000',
        SWEEP_INTERVAL_MS: String(SWEEP_INTERVAL_MS),
        RATE_LIMIT_REGISTER_PER_IP_PER_HOUR: '10000',
        RATE_LIMIT_CHALLENGE_PER_IP_PER_MINUTE: '10000',
        RATE_LIMIT_TOKEN_PER_DEVICE_PER_MINUTE: '10000',
        S3_ENDPOINT: s3.endpoint,
        S3_BUCKET: 'umbra-chaos',
        S3_FORCE_PATH_STYLE: 'true',
      },
    });
    const origin = await driver.startEdge();
    driver.setEnv({ PUBLIC_ORIGIN: origin });
    // Generous: seven Node processes load at once on two cores.
    await Promise.all([
      driver.add('key-directory', 1, BOOT_TIMEOUT_MS),
      driver.add('message-relay', 2, BOOT_TIMEOUT_MS),
      driver.add('gateway', 2, BOOT_TIMEOUT_MS),
      driver.add('media-upload', 1, BOOT_TIMEOUT_MS),
      driver.add('expiry-worker', 1, BOOT_TIMEOUT_MS),
    ]);
    load = new LoadDriver(origin, history, {
      inFlight: 2,
      intervalMs: 200,
      maxPerDevicePerPhase: 120,
      vanishingShare: 0.15,
      vanishingMs: [5000, 15000],
      sendTimeoutMs: 5000,
    });
    await load.addDevices(6);
    await untilStoring('setup');
  }, BOOT_TIMEOUT_MS + 150_000);

  /**
   * Before each phase: every device sends until one round is stored for all of them, so a phase
   * measures its own fault. Over 5 s is printed; over 120 s fails (liveness): a gateway that came
   * up without its pub/sub channel once left sends unanswered for minutes (docs/security.md).
   */
  const untilStoring = async (before: string): Promise<void> => {
    const t0 = Date.now();
    load.fault = `liveness before ${before}`;
    for (;;) {
      const devices = load.online();
      const round = devices.map((d, i) => load.send(d, [devices[(i + 1) % devices.length]!]));
      await Promise.all(round.map((r) => r.done));
      if (round.every((r) => r.op.ackedAt !== undefined)) break;
      if (Date.now() - t0 > 120_000) {
        process.stdout.write(`${JSON.stringify({ liveness: before, stalledMs: Date.now() - t0 })}\n`);
        throw new Error(`liveness: sends before "${before}" were not all stored within 120 s`);
      }
    }
    const waited = Date.now() - t0;
    if (waited > 5_000) process.stdout.write(`${JSON.stringify({ liveness: before, waitedMs: waited })}\n`);
  };

  afterAll(async () => {
    await load?.close().catch(() => undefined);
    await driver?.stop().catch(() => undefined);
    admin?.disconnect();
    await redisProxy?.close().catch(() => undefined);
    await pgProxy?.close().catch(() => undefined);
    await closeS3?.().catch(() => undefined);
    await Promise.all([postgres?.stop(), redis?.stop()]).catch(() => undefined);
    if (results.length > 0) {
      process.stdout.write(`\nchaos results (fault | sent | acked | delivered | duplicatesSuppressed | lost | expiredUndelivered | delivery p50/max ms)\n`);
      for (const r of results) {
        process.stdout.write(`| ${r.fault} | ${r.sent} | ${r.acked} | ${r.delivered} | ${r.duplicatesSuppressed} | ${r.lost} | ${r.expiredUndelivered} | ${r.deliveryMsP50} / ${r.deliveryMsMax} |\n`);
      }
    }
    process.removeListener('exit', lastResort);
    if (process.env.UMBRA_CHAOS_KEEP === '1') process.stdout.write(`kept ${tmp} (UMBRA_CHAOS_KEEP=1)\n`);
    else fs.rmSync(tmp, { recursive: true, force: true });
  }, 60_000);

  const reportOf = (fault: string): { report: FaultReport; violations: Violation[] } => {
    const { reports, violations } = history.check({ now: Date.now(), lateGraceMs: LATE_GRACE_MS });
    return { report: reports.find((r) => r.fault === fault)!, violations: violations.filter((v) => v.fault === fault) };
  };

  const deliveryLatency = (fault: string): { deliveryMsP50: number; deliveryMsMax: number } => {
    const first = new Map<string, number>();
    for (const r of history.receipts) {
      const k = `${r.device}|${r.sender}|${r.clientMessageId}`;
      if (!first.has(k)) first.set(k, r.at);
    }
    const ms: number[] = [];
    for (const s of history.sends) {
      if (s.fault !== fault || s.ackedAt === undefined) continue;
      for (const d of s.recipients) {
        const at = first.get(`${d}|${s.sender}|${s.clientMessageId}`);
        if (at !== undefined) ms.push(Math.max(0, at - s.ackedAt));
      }
    }
    ms.sort((a, b) => a - b);
    return { deliveryMsP50: ms[Math.floor(ms.length / 2)] ?? 0, deliveryMsMax: ms[ms.length - 1] ?? 0 };
  };

  /** Waits (bounded) until every acknowledged pair of this fault has arrived or expired. */
  const waitDelivered = async (fault: string, timeoutMs: number): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (reportOf(fault).report.lost === 0) return;
      await sleep(250);
    }
  };

  const allReady = () => Promise.all(driver.processes.map((p) => driver.ready(p, 90_000)));

  /** Runs the load around one injection and checks the fault's history. */
  const phase = async (fault: string, inject: () => Promise<void>, opts: { beforeMs?: number; afterMs?: number } = {}): Promise<PhaseResult> => {
    await allReady();
    await untilStoring(fault);
    const exitsBefore = driver.unexpectedExits.length;
    const t0 = Date.now();
    load.start(fault);
    let unsettled: number;
    try {
      await sleep(opts.beforeMs ?? 2000);
      await inject();
      await allReady();
      await sleep(opts.afterMs ?? 2500);
    } finally {
      ({ unsettled } = await load.stop(20_000));
    }
    await waitDelivered(fault, 20_000);
    const { report, violations } = reportOf(fault);
    const lostPairs = violations.filter((v) => v.kind === 'lost');
    let lostStillQueued = 0;
    let recoveredByReconnect = 0;
    if (lostPairs.length > 0) {
      // Stored but never pushed to a connected device, or gone from Postgres? Then: does a reconnect fix it?
      const ids = [...new Set(lostPairs.map((v) => v.clientMessageId))].map((id) => Buffer.from(id, 'base64url'));
      const rows = await sql<{ n: string }>('SELECT count(*) AS n FROM envelopes WHERE client_message_id = ANY($1::bytea[])', [ids]);
      lostStillQueued = Number(rows[0]?.n ?? 0);
      const affected = new Set(lostPairs.map((v) => v.device));
      for (const d of load.devices.filter((x) => affected.has(x.key))) await load.reopen(d);
      await waitDelivered(fault, 10_000);
      recoveredByReconnect = report.lost - reportOf(fault).report.lost;
      process.stdout.write(`${JSON.stringify({ fault, lostExamples: lostPairs.slice(0, 5) })}\n`);
    }
    const result: PhaseResult = {
      ...report,
      ...deliveryLatency(fault),
      unsettled,
      lostStillQueued,
      recoveredByReconnect,
      unexpectedExits: driver.unexpectedExits.slice(exitsBefore).map((e) => `${e.id}:${e.signal ?? e.code}`),
      ms: Date.now() - t0,
    };
    results.push(result);
    const { fault: f, sent, acked, delivered, duplicatesSuppressed, lost } = result;
    process.stdout.write(`${JSON.stringify({ fault: f, sent, acked, delivered, duplicatesSuppressed, lost, detail: { ...result, fault: undefined } })}\n`);
    return result;
  };

  const expectClean = (r: PhaseResult) => {
    expect({ fault: r.fault, stored: r.acked > 0, lost: r.lost, shownTwice: r.shownTwice, lateVanished: r.lateVanished, misrouted: r.misrouted }).toEqual({
      fault: r.fault,
      stored: true,
      lost: 0,
      shownTwice: 0,
      lateVanished: 0,
      misrouted: 0,
    });
  };

  const restartRedis = async () => {
    redis!.kill('SIGKILL');
    const deadline = Date.now() + 10_000;
    while ((await isPortOpen(redisPort)) && Date.now() < deadline) await sleep(50);
    await sleep(1000);
    redis = await startRedis();
  };

  test('baseline (no fault)', async () => {
    expectClean(await phase('none (baseline)', async () => undefined));
  }, 210_000);

  for (const id of ['gateway-1', 'gateway-2', 'message-relay-1', 'message-relay-2']) {
    test(`kill -9 ${id} and restart`, async () => {
      expectClean(await phase(`kill -9 ${id}`, () => driver.kill9AndRestart(driver.get(id), 500)));
    }, 240_000);
  }

  test('kill -9 key-directory-1, media-upload-1 and expiry-worker-1 together, and restart', async () => {
    const ids = ['key-directory-1', 'media-upload-1', 'expiry-worker-1'];
    expectClean(await phase(`kill -9 ${ids.join(' + ')}`, async () => void (await Promise.all(ids.map((id) => driver.kill9AndRestart(driver.get(id), 500))))));
  }, 240_000);

  test(`SIGSTOP message-relay-1 for longer than the BullMQ lock (${BULLMQ_LOCK_MS / 1000} s), then SIGCONT`, async () => {
    const relay = driver.get('message-relay-1');
    const r = await phase(`SIGSTOP message-relay-1 ${(BULLMQ_LOCK_MS + 5000) / 1000} s`, async () => {
      driver.signal(relay, 'SIGSTOP');
      await sleep(BULLMQ_LOCK_MS + 5000);
      driver.signal(relay, 'SIGCONT');
    });
    expectClean(r);
  }, 300_000);

  test('Redis FLUSHALL', async () => {
    expectClean(await phase('redis FLUSHALL', async () => void (await adminRedis().flushall())));
  }, 240_000);

  test('Redis restart (kill -9, nothing on disk)', async () => {
    expectClean(await phase('redis restart', restartRedis));
  }, 240_000);

  test('Redis CLIENT KILL TYPE pubsub', async () => {
    expectClean(await phase('redis CLIENT KILL TYPE pubsub', async () => void (await adminRedis().call('CLIENT', 'KILL', 'TYPE', 'pubsub'))));
  }, 240_000);

  test('Postgres pg_terminate_backend of every service connection', async () => {
    expectClean(await phase('postgres pg_terminate_backend', async () => void (await terminateServiceConnections())));
  }, 240_000);

  test('Postgres restart', async () => {
    expectClean(
      await phase('postgres restart', async () => {
        await postgres!.stop();
        await sleep(1000);
        postgres = await startPostgres();
      }),
    );
  }, 240_000);

  test('network: 150 ms latency to Redis and Postgres', async () => {
    expectClean(
      await phase('proxy latency 150 ms', async () => {
        redisProxy.latency(150);
        pgProxy.latency(150);
        await sleep(5000);
        redisProxy.heal();
        pgProxy.heal();
      }),
    );
  }, 240_000);

  test('network: Redis blackholed for 3 s', async () => {
    expectClean(
      await phase('proxy blackhole redis 3 s', async () => {
        redisProxy.blackhole(3000);
        await sleep(3500);
        redisProxy.heal();
      }),
    );
  }, 240_000);

  test('network: Postgres blackholed for 3 s', async () => {
    expectClean(
      await phase('proxy blackhole postgres 3 s', async () => {
        pgProxy.blackhole(3000);
        await sleep(3500);
        pgProxy.heal();
      }),
    );
  }, 240_000);

  test('network: every Redis and Postgres connection reset', async () => {
    expectClean(
      await phase('proxy reset redis+postgres', async () => {
        redisProxy.reset();
        pgProxy.reset();
      }),
    );
  }, 240_000);

  test('network: slow close while the servers drop connections', async () => {
    expectClean(
      await phase('proxy slow close 1.5 s + server-side disconnects', async () => {
        redisProxy.slowClose(1500);
        pgProxy.slowClose(1500);
        await Promise.all([adminRedis().call('CLIENT', 'KILL', 'TYPE', 'normal'), terminateServiceConnections()]);
        await sleep(3000);
        redisProxy.heal();
        pgProxy.heal();
      }),
    );
  }, 240_000);

  test('combined: kill -9 a gateway and a relay, FLUSHALL, pg_terminate_backend, under 100 ms latency', async () => {
    expectClean(
      await phase('combined', async () => {
        redisProxy.latency(100);
        pgProxy.latency(100);
        await Promise.all([
          driver.kill9AndRestart(driver.get('gateway-1'), 500),
          driver.kill9AndRestart(driver.get('message-relay-2'), 500),
          adminRedis().flushall(),
          terminateServiceConnections(),
        ]);
        await sleep(2000);
        redisProxy.heal();
        pgProxy.heal();
      }),
    );
  }, 270_000);

  /**
   * Clock skew on the expiry path: the expiry-worker runs under libfaketime while an offline device's
   * queue holds messages without a timer, with a 5-minute timer and with a 3-second timer. When the
   * device connects after the 3-second deadlines: the first two kinds must all arrive (nothing
   * non-expired deleted) and no 3-second one may arrive after its deadline.
   */
  const skewPhase = async (skew: string, restore: boolean): Promise<PhaseResult> => {
    const lib = FAKETIME_LIBS.find((f) => fs.existsSync(f));
    if (!lib) throw new Error('libfaketime is not installed (Debian package faketime); .ci/run installs it');
    const worker = driver.get('expiry-worker-1');
    worker.extraEnv = { LD_PRELOAD: lib, FAKETIME: skew, FAKETIME_DONT_FAKE_MONOTONIC: '1' };
    await driver.restart(worker);
    const fault = `clock skew: expiry-worker ${skew}`;
    const t0 = Date.now();
    try {
      load.fault = fault;
      const [offline] = (await load.addDevices(1, false)) as [LoadDevice];
      load.markOffline([offline]);
      const sender = load.online()[0]!;
      const now = Date.now();
      const sends = [
        ...Array.from({ length: 10 }, () => load.send(sender, [offline], 0)),
        ...Array.from({ length: 10 }, () => load.send(sender, [offline], now + 5 * 60_000)),
        ...Array.from({ length: 10 }, () => load.send(sender, [offline], now + 3000)),
      ];
      await Promise.all(sends.map((s) => s.done));
      // The short deadlines pass and a few sweeps run (or, skewed back, do not yet delete them).
      await sleep(Math.max(0, now + 3000 - Date.now()) + 4 * SWEEP_INTERVAL_MS + 1000);
      await load.connect(offline);
      await waitDelivered(fault, 10_000);
      await sleep(500);
      const { report } = reportOf(fault);
      const result: PhaseResult = { ...report, ...deliveryLatency(fault), unsettled: 0, lostStillQueued: 0, recoveredByReconnect: 0, unexpectedExits: [], ms: Date.now() - t0 };
      results.push(result);
      const { sent, acked, delivered, duplicatesSuppressed, lost } = result;
      process.stdout.write(`${JSON.stringify({ fault, sent, acked, delivered, duplicatesSuppressed, lost, detail: { ...result, fault: undefined } })}\n`);
      return result;
    } finally {
      worker.extraEnv = {};
      if (restore) await driver.restart(worker);
    }
  };

  test('clock skew: an expiry-worker 10 minutes behind lets no vanished message through late', async () => {
    const r = await skewPhase('-10m', false);
    expectClean(r);
    expect(r.expiredUndelivered).toBe(10);
  }, 240_000);

  /**
   * Found by this suite: the expiry-worker used to decide what is due by its own wall clock, so a
   * worker 10 minutes fast deleted every vanishing message due in the next 10 minutes and shredded
   * their key windows early. Deletions now take "now" from DatabaseClock (the local clock corrected
   * by its measured offset from Postgres), which every deadline was written against.
   */
  test('clock skew: an expiry-worker 10 minutes ahead deletes nothing before its deadline', async () => {
    const r = await skewPhase('+10m', true);
    expectClean(r);
    expect(r.expiredUndelivered).toBe(10);
  }, 240_000);

  test('the whole history: nothing shown twice, nothing late, nothing misrouted', () => {
    const { violations } = history.check({ now: Date.now(), lateGraceMs: LATE_GRACE_MS });
    expect(violations.filter((v) => v.kind !== 'lost')).toEqual([]);
    expect(results.reduce((n, r) => n + r.acked, 0)).toBeGreaterThan(0);
  });
});

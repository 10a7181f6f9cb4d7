import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DEV_KT_LOG_PUBLIC_KEY, DEV_WITNESS_PUBLIC_KEY } from '@umbra/server';
import { TEST_DATABASE_URL, TEST_REDIS_URL, waitFor } from './support/harness';
import { freePort, freeRange } from './support/ports';

/** `npm start` (dist/scripts/start.js, built by `npm run build` / `npm test`) as a user runs it. */
const START = path.resolve('dist', 'scripts', 'start.js');


interface Launched {
  child: ChildProcess;
  out: () => string;
  exited: Promise<number | null>;
}

/** Pids of service processes started with this REDIS_PREFIX (read from /proc). */
function servicesWithPrefix(prefix: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (!cmdline.includes('dist/services/')) continue;
      if (readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0').includes(`REDIS_PREFIX=${prefix}`)) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

function launch(env: Record<string, string>): Launched & { prefix: string } {
  let out = '';
  const prefix = `l${process.pid}x${Math.floor(Math.random() * 1e9)}`;
  const child = spawn(process.execPath, [START], {
    env: { ...process.env, DATABASE_URL: TEST_DATABASE_URL, REDIS_URL: TEST_REDIS_URL, REDIS_PREFIX: prefix, POW_DIFFICULTY: '4', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, out: () => out, exited, prefix };
}

describe('npm start (the launcher)', () => {
  const dirs: string[] = [];
  const children: ChildProcess[] = [];
  const dataDir = () => {
    const d = mkdtempSync(path.join(tmpdir(), 'umbra-launcher-'));
    dirs.push(d);
    return d;
  };

  beforeAll(() => {
    if (!existsSync(START)) throw new Error(`${START} is missing: run npm run build first`);
  });
  afterAll(async () => {
    // SIGINT: the launcher stops its services and databases before exiting.
    await Promise.all(
      children
        .filter((c) => c.exitCode === null && c.signalCode === null)
        .map((c) => new Promise((r) => (c.once('exit', r), c.kill('SIGINT')))),
    );
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it.each([
    ['a service instance port', (base: number) => base + 3, 'gateway-1', 'SERVICES_BASE_PORT'],
    ['the edge port', (_base: number, edge: number) => edge, 'edge', 'EDGE_PORT'],
    ['the embedded S3 port', (_base: number, _edge: number, s3: number) => s3, 'embedded S3', 'S3_EMBEDDED_PORT'],
  ])('fails with a clear message naming %s when it is taken, and starts nothing', async (_what, pick, name, variable) => {
    const base = await freeRange(8);
    const edge = await freePort();
    const s3 = await freePort();
    const taken = pick(base, edge, s3);
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(taken, '127.0.0.1', r));
    try {
      const run = launch({ SERVICES_BASE_PORT: String(base), EDGE_PORT: String(edge), S3_EMBEDDED_PORT: String(s3), UMBRA_DATA_DIR: dataDir() });
      children.push(run.child);
      const code = await run.exited;
      expect(code).not.toBe(0);
      expect(run.out()).toContain(`start failed: port ${taken} on 127.0.0.1 (${name}`);
      expect(run.out()).toContain('already in use');
      expect(run.out()).toContain(variable);
      expect(run.out()).not.toMatch(/\n\s+at /);
      // Nothing was left listening on the other planned ports.
      for (const p of [base, base + 1, edge]) if (p !== taken) expect(await portOpen(p)).toBe(false);
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });

  it('Ctrl-C while it is still starting leaves no service process behind', async () => {
    const base = await freeRange(8);
    const run = launch({ SERVICES_BASE_PORT: String(base), EDGE_PORT: String(await freePort()), S3_EMBEDDED_PORT: String(await freePort()), UMBRA_DATA_DIR: dataDir() });
    children.push(run.child);
    await waitFor(() => run.out().includes('embedded S3 at') || run.child.exitCode !== null, 60_000, 'services spawning');
    await waitFor(() => servicesWithPrefix(run.prefix).length === 8, 10_000, 'eight service processes');
    run.child.kill('SIGINT');
    expect(await run.exited).toBe(130);
    await waitFor(() => servicesWithPrefix(run.prefix).length === 0, 30_000, 'service processes gone');
  }, 120_000);

  it('with UMBRA_SKIP_SERVICES=gateway: /readyz at the edge is 503 naming the gateway until the developer runs it from the written env file, then 200', async () => {
    const base = await freeRange(8);
    const edge = await freePort();
    const s3 = await freePort();
    const dir = dataDir();
    const run = launch({ SERVICES_BASE_PORT: String(base), EDGE_PORT: String(edge), S3_EMBEDDED_PORT: String(s3), UMBRA_DATA_DIR: dir, UMBRA_SKIP_SERVICES: 'gateway' });
    children.push(run.child);
    const origin = `http://127.0.0.1:${edge}`;
    await waitFor(() => run.out().includes('Umbra is up') || run.child.exitCode !== null, 90_000, 'launcher up');
    expect(run.out()).toContain('Umbra is up');
    expect(run.out()).toContain('npx nest start gateway --watch --env-file');

    const down = await fetch(`${origin}/readyz`);
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).toMatch(/^\d+$/);
    const report = (await down.json()) as { status: string; services: Record<string, { ready: number; instances: number }>; error: { code: string } };
    expect(report.status).toBe('unavailable');
    expect(report.error.code).toBe('UNAVAILABLE');
    expect(report.services.gateway).toEqual({ ready: 0, instances: 1 });
    expect(report.services['message-relay']).toEqual({ ready: 2, instances: 2 });
    expect(Object.keys(report.services).sort()).toEqual(['expiry-worker', 'gateway', 'key-directory', 'media-upload', 'message-relay', 'witness']);
    expect(JSON.stringify(report)).not.toContain('127.0.0.1');

    // The client trust configuration of key transparency: the development log key and the local witness.
    const kt = JSON.parse(readFileSync(path.join(dir, 'kt.json'), 'utf8')) as { logPublicKey: string; witnesses: { publicKey: string }[]; quorum: number };
    expect(kt).toMatchObject({ logPublicKey: DEV_KT_LOG_PUBLIC_KEY, witnesses: [{ publicKey: DEV_WITNESS_PUBLIC_KEY }], quorum: 1 });

    const envFile = path.join(dir, 'gateway.env');
    const envText = readFileSync(envFile, 'utf8');
    expect(envText).toContain(`PORT=${base + 3}`);
    expect(envText).toContain(`PUBLIC_ORIGIN=${origin}`);
    const gateway = spawn(process.execPath, [`--env-file=${envFile}`, path.resolve('dist', 'services', 'gateway', 'src', 'main.js')], { stdio: 'ignore' });
    children.push(gateway);
    try {
      await waitFor(async () => (await fetch(`${origin}/readyz`)).status === 200, 60_000, 'edge ready with the developer gateway');
      const ready = (await (await fetch(`${origin}/readyz`)).json()) as { status: string; services: Record<string, { ready: number }> };
      expect(ready.status).toBe('ready');
      expect(ready.services.gateway!.ready).toBe(1);
      // Metrics stay internal: the public origin does not serve them.
      const metrics = await fetch(`${origin}/metrics`);
      expect(metrics.status).toBe(404);
      expect(await metrics.text()).not.toContain('umbra_');
    } finally {
      gateway.kill('SIGTERM');
    }
    run.child.kill('SIGINT');
    expect(await run.exited).toBe(0);
    for (const p of [edge, base, base + 1, s3]) expect(await portOpen(p)).toBe(false);
  }, 180_000);
});

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

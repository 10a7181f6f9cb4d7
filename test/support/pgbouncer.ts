import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from './ports';

/**
 * A private PgBouncer (Debian `pgbouncer`, 1.18 in CI) in front of one Postgres database: its own
 * ini and userlist in a temp dir, on a free loopback port, `pool_mode = transaction`, a small pool.
 * Its admin console (database `pgbouncer`) answers SHOW POOLS / SHOW STATS for the assertions.
 */

export const PGBOUNCER_PACKAGE = 'pgbouncer (Debian/Ubuntu: apt-get install pgbouncer)';
const CANDIDATES = ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer', '/usr/local/bin/pgbouncer'];

/** The pgbouncer binary; throws when it is absent, so the suite fails instead of passing unchecked. */
export function findPgBouncer(pathDirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean)): string {
  for (const file of [...pathDirs.map((d) => path.join(d, 'pgbouncer')), ...CANDIDATES]) {
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // not here; next candidate
    }
  }
  throw new Error(`pgbouncer not found on PATH or in ${CANDIDATES.join(', ')}; install ${PGBOUNCER_PACKAGE}`);
}

export interface PgBouncerOptions {
  /** The Postgres database the pool fronts (postgres://user[:password]@host:port/db). */
  upstreamUrl: string;
  /** Server connections per (database, user): default_pool_size and max_db_connections. */
  poolSize: number;
  maxClientConn?: number;
}

export type PoolRow = { database: string; user: string; cl_active: number; cl_waiting: number; sv_active: number; sv_idle: number; sv_used: number; sv_tested: number; sv_login: number; pool_mode: string };
export type StatsRow = { database: string; total_xact_count: number; total_query_count: number };

export class PgBouncer {
  private stderr = '';

  private constructor(
    private readonly proc: ChildProcess,
    private readonly dir: string,
    readonly port: number,
    readonly database: string,
    private readonly user: string,
    /** The upstream URL with host and port swapped for the pooler's. */
    readonly url: string,
  ) {
    proc.stderr!.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString('utf8')).slice(-8000)));
  }

  static async start(opts: PgBouncerOptions): Promise<PgBouncer> {
    const bin = findPgBouncer();
    const up = new URL(opts.upstreamUrl);
    const database = decodeURIComponent(up.pathname.slice(1));
    const user = decodeURIComponent(up.username || 'postgres');
    const password = decodeURIComponent(up.password);
    const port = await freePort();
    const dir = fs.mkdtempSync(path.join(tmpdir(), 'umbra-pgbouncer-'));
    // Readable by the unprivileged user pgbouncer switches to when this process is root.
    fs.chmodSync(dir, 0o755);
    const quote = (v: string) => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
    const server = [`host=${up.hostname}`, `port=${up.port || '5432'}`, `dbname=${database}`, `user=${user}`, ...(password ? [`password=${quote(password)}`] : [])].join(' ');
    const ini = [
      '[databases]',
      `${database} = ${server}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      // Loopback only, in a throwaway process; the upstream password (if any) is in the [databases] line.
      'auth_type = trust',
      `auth_file = ${path.join(dir, 'userlist.txt')}`,
      `admin_users = ${user}`,
      `stats_users = ${user}`,
      'pool_mode = transaction',
      `default_pool_size = ${opts.poolSize}`,
      `max_db_connections = ${opts.poolSize}`,
      'min_pool_size = 0',
      'reserve_pool_size = 0',
      `max_client_conn = ${opts.maxClientConn ?? 500}`,
      'ignore_startup_parameters = extra_float_digits',
      'log_connections = 0',
      'log_disconnections = 0',
      '',
    ].join('\n');
    fs.writeFileSync(path.join(dir, 'pgbouncer.ini'), ini, { mode: 0o644 });
    fs.writeFileSync(path.join(dir, 'userlist.txt'), `"${user}" ""\n`, { mode: 0o644 });
    // PgBouncer refuses to run as root.
    const asUser = process.getuid?.() === 0 ? ['-u', 'nobody'] : [];
    const proc = spawn(bin, [...asUser, path.join(dir, 'pgbouncer.ini')], { stdio: ['ignore', 'ignore', 'pipe'] });
    const url = new URL(opts.upstreamUrl);
    url.hostname = '127.0.0.1';
    url.port = String(port);
    const bouncer = new PgBouncer(proc, dir, port, database, user, url.toString());
    await bouncer.waitListening();
    return bouncer;
  }

  private async waitListening(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.proc.exitCode !== null) throw new Error(`pgbouncer exited (${this.proc.exitCode}): ${this.stderr}`);
      const open = await new Promise<boolean>((resolve) => {
        const s = net.connect(this.port, '127.0.0.1');
        s.once('connect', () => (s.destroy(), resolve(true)));
        s.once('error', () => resolve(false));
      });
      if (open) return;
      if (Date.now() > deadline) throw new Error(`pgbouncer did not listen on 127.0.0.1:${this.port}: ${this.stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** One admin-console command (simple protocol only), rows with numeric columns as numbers. */
  async admin<T>(command: 'SHOW POOLS' | 'SHOW STATS' | 'SHOW CLIENTS' | 'SHOW SERVERS'): Promise<T[]> {
    const client = new pg.Client({ host: '127.0.0.1', port: this.port, user: this.user, database: 'pgbouncer' });
    await client.connect();
    try {
      const res = await client.query(command);
      return res.rows.map((r: Record<string, unknown>) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v]))) as T[];
    } finally {
      await client.end();
    }
  }

  /** The pool of the fronted database (clients and server connections right now). */
  async pool(): Promise<{ clients: number; servers: number; mode: string }> {
    const row = (await this.admin<PoolRow>('SHOW POOLS')).find((r) => r.database === this.database && r.user === this.user);
    if (!row) return { clients: 0, servers: 0, mode: 'none' };
    return { clients: row.cl_active + row.cl_waiting, servers: row.sv_active + row.sv_idle + row.sv_used + row.sv_tested + row.sv_login, mode: row.pool_mode };
  }

  async stats(): Promise<StatsRow> {
    const row = (await this.admin<StatsRow>('SHOW STATS')).find((r) => r.database === this.database);
    return row ?? { database: this.database, total_xact_count: 0, total_query_count: 0 };
  }

  log(): string {
    return this.stderr;
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode === null) {
      await new Promise((r) => {
        this.proc.once('exit', r);
        this.proc.kill('SIGTERM');
      });
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

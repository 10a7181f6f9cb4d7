/**
 * Where the server side of a bench runs: the pids of the stack's service processes, the
 * redis-server process (INFO server → process_id) and the Postgres processes that work for the
 * bench's database (its backends in pg_stat_activity, the background processes and the postmaster).
 */
import { Client } from 'pg';
import IORedis from 'ioredis';
import type { PidSource } from './proc-cpu';
import { readProcStat } from './proc-cpu';

/** The redis-server pid, or undefined when Redis runs elsewhere (another host or pid namespace). */
export async function redisServerPid(redisUrl: string): Promise<number | undefined> {
  const redis = new IORedis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    const info = await redis.info('server');
    const m = /process_id:(\d+)/.exec(info);
    const pid = m ? Number(m[1]) : undefined;
    return pid !== undefined && readProcStat(pid) ? pid : undefined;
  } finally {
    redis.disconnect();
  }
}

export interface PostgresPids {
  /** Backends of `database`, the background processes (checkpointer, walwriter, …) and the postmaster. */
  source: PidSource;
  close: () => Promise<void>;
}

/**
 * Reads the Postgres pids per sample through one monitoring connection (its own backend is left
 * out). Backends of other databases are not counted (other work on the same server); background
 * processes are shared by every database and counted whole.
 */
export async function postgresPids(databaseUrl: string): Promise<PostgresPids | undefined> {
  const url = new URL(databaseUrl);
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  const self = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  const own = readProcStat(self);
  if (!own) {
    await client.end();
    return undefined; // Postgres is not visible in this pid namespace.
  }
  const postmaster = own.ppid;
  return {
    source: async () => {
      const rows = (
        await client.query<{ pid: number }>(
          `SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND (datname = $1 OR backend_type <> 'client backend')`,
          [database],
        )
      ).rows;
      return [postmaster, ...rows.map((r) => r.pid)];
    },
    close: () => client.end(),
  };
}

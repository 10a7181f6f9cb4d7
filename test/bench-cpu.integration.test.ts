import { spawn } from 'node:child_process';
import { Client } from 'pg';
import { CpuSampler, CpuWindow, readProcStat } from '../bench/support/proc-cpu';
import { postgresPids, redisServerPid } from '../bench/support/server-pids';
import { TEST_DATABASE_URL, TEST_REDIS_URL } from './support/harness';

/**
 * A child that burns `ms` of its own CPU time, then exits. CPU time, not wall time: on a loaded
 * 2-core CI machine a wall-clock spin of 600 ms got only 200 ms of CPU.
 */
function burner(ms: number) {
  const script = `while (process.cpuUsage().user + process.cpuUsage().system < ${ms * 1000});`;
  const child = spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return { pid: child.pid!, exited };
}

// The bench reads the server processes from /proc: only possible when Redis and Postgres run on this host.
const local = (url: string) => ['127.0.0.1', 'localhost', '::1', '[::1]'].includes(new URL(url).hostname);
const itLocal = local(TEST_DATABASE_URL) && local(TEST_REDIS_URL) ? it : it.skip;

describe('bench CPU accounting (/proc/<pid>/stat, real Redis and Postgres)', () => {
  it('reads utime+stime of a live process and nothing for a missing one', () => {
    const own = readProcStat(process.pid);
    expect(own).toBeDefined();
    expect(own!.cpuMs).toBeGreaterThan(0);
    expect(own!.ppid).toBe(process.ppid);
    expect(readProcStat(2 ** 30)).toBeUndefined();
  });

  it('a window counts a busy process, also one that exits before the window ends', async () => {
    const busy = burner(800);
    const idle = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 3000)'], { stdio: 'ignore' });
    const sampler = new CpuSampler({ busy: () => [busy.pid], idle: () => [idle.pid!] });
    const w = await CpuWindow.start(sampler, 100);
    await busy.exited;
    await new Promise((r) => setTimeout(r, 300));
    const { ms } = await w.stop();
    idle.kill();
    // Most of its 800 ms of CPU falls inside the window (its start-up and the part after the last sample may not).
    expect(ms.busy).toBeGreaterThan(300);
    expect(ms.idle).toBeLessThan(100);
  });

  itLocal('finds the redis-server process and the Postgres processes of one database, not those of another database', async () => {
    const redisPid = await redisServerPid(TEST_REDIS_URL);
    expect(redisPid).toBeDefined();
    expect(readProcStat(redisPid!)).toBeDefined();

    const other = new Client({ connectionString: TEST_DATABASE_URL });
    await other.connect();
    const otherPid = (await other.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    const pg = await postgresPids(TEST_DATABASE_URL);
    expect(pg).toBeDefined();
    try {
      const pids = await pg!.source();
      expect(pids).toContain(otherPid);
      // The first pid is the postmaster, the parent of every backend.
      expect(readProcStat(otherPid)!.ppid).toBe(pids[0]);
      // A backend of another database is not counted.
      const admin = new Client({ connectionString: TEST_DATABASE_URL.replace(/\/[^/]*$/, '/postgres') });
      await admin.connect();
      const adminPid = (await admin.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      expect(await pg!.source()).not.toContain(adminPid);
      await admin.end();
    } finally {
      await pg!.close();
      await other.end();
    }
  });
});

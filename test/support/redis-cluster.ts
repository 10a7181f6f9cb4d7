import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

/**
 * A private Redis Cluster: 3 masters and 3 replicas from the Debian `redis-server` (≥ 7 for sharded
 * pub/sub) on loopback ports, each with its own temp dir and nothing on disk, joined by
 * `redis-cli --cluster create --cluster-replicas 1`. A master can be killed (SIGKILL); its replica
 * takes over after `cluster-node-timeout`.
 */

export const REDIS_PACKAGE = 'redis-server and redis-tools (Debian/Ubuntu: apt-get install redis-server redis-tools)';
const HOST = '127.0.0.1';
/** How long a node may be unreachable before its replica is promoted. */
const NODE_TIMEOUT_MS = 2000;
const run = promisify(execFile);

/** A binary on PATH or in /usr/bin; throws when it is absent, so the suite fails instead of passing unchecked. */
export function findRedisBinary(name: 'redis-server' | 'redis-cli', pathDirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean)): string {
  for (const file of [...pathDirs.map((d) => path.join(d, name)), `/usr/bin/${name}`, `/usr/local/bin/${name}`]) {
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // not here; next candidate
    }
  }
  throw new Error(`${name} not found on PATH; install ${REDIS_PACKAGE}`);
}

/** A base port with `n` free ports from it and `n` free cluster-bus ports (port + 10000). */
async function freeClusterPorts(n: number): Promise<number> {
  const free = (port: number) =>
    new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, HOST, () => s.close(() => resolve(true)));
    });
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20000 + Math.floor(Math.random() * 25000);
    const ports = Array.from({ length: n }, (_, i) => base + i);
    const ok = await Promise.all([...ports, ...ports.map((p) => p + 10000)].map(free));
    if (ok.every(Boolean)) return base;
  }
  throw new Error('no free port range for a Redis Cluster');
}

export interface ClusterNodeInfo {
  id: string;
  port: number;
  role: 'master' | 'replica';
  /** Connected and not flagged failing. */
  alive: boolean;
  /** "a-b" ranges and single slots served (masters). */
  slots: [number, number][];
}

export class RedisCluster {
  private readonly procs = new Map<number, ChildProcess>();

  private constructor(
    private readonly dir: string,
    readonly ports: number[],
    private readonly server: string,
    private readonly cli: string,
  ) {}

  /** REDIS_CLUSTER_NODES for the services. */
  get nodesEnv(): string {
    return this.ports.map((p) => `${HOST}:${p}`).join(',');
  }

  static async start(opts: { masters?: number } = {}): Promise<RedisCluster> {
    const server = findRedisBinary('redis-server');
    const cli = findRedisBinary('redis-cli');
    const { stdout } = await run(server, ['--version']);
    const major = Number(/v=(\d+)\./.exec(stdout)?.[1] ?? 0);
    if (major < 7) throw new Error(`${server} is ${stdout.trim()}; sharded pub/sub needs Redis 7 or later`);
    const n = (opts.masters ?? 3) * 2;
    const base = await freeClusterPorts(n);
    const dir = await mkdtemp(path.join(tmpdir(), 'umbra-redis-cluster-'));
    const cluster = new RedisCluster(dir, Array.from({ length: n }, (_, i) => base + i), server, cli);
    try {
      for (const port of cluster.ports) cluster.spawnNode(port);
      await Promise.all(cluster.ports.map((p) => cluster.waitFor(async () => (await cluster.cmd(p, 'PING')) === 'PONG', 10_000, `redis-server :${p} to answer`)));
      await run(cli, ['--cluster', 'create', ...cluster.ports.map((p) => `${HOST}:${p}`), '--cluster-replicas', '1', '--cluster-yes'], { timeout: 30_000 });
      await cluster.waitHealthy(30_000);
      return cluster;
    } catch (err) {
      await cluster.stop();
      throw err;
    }
  }

  private spawnNode(port: number): void {
    const nodeDir = path.join(this.dir, String(port));
    fs.mkdirSync(nodeDir, { recursive: true });
    // prettier-ignore
    const args = [
      '--port', String(port), '--bind', HOST, '--dir', nodeDir,
      '--cluster-enabled', 'yes', '--cluster-config-file', path.join(nodeDir, 'nodes.conf'), '--cluster-node-timeout', String(NODE_TIMEOUT_MS),
      '--appendonly', 'no', '--save', '', '--maxmemory-policy', 'noeviction',
    ];
    const proc = spawn(this.server, args, { stdio: 'ignore' });
    this.procs.set(port, proc);
  }

  /** One command to one node through redis-cli (raw output, trimmed). */
  async cmd(port: number, ...args: string[]): Promise<string> {
    const { stdout } = await run(this.cli, ['-h', HOST, '-p', String(port), ...args], { timeout: 5000 });
    return stdout.trim();
  }

  /** The cluster as a live node sees it (CLUSTER NODES). */
  async nodes(): Promise<ClusterNodeInfo[]> {
    let lastErr: unknown;
    for (const port of this.livePorts()) {
      try {
        const text = await this.cmd(port, 'CLUSTER', 'NODES');
        return text.split('\n').filter(Boolean).map((line) => {
          const [id, addr, flags, , , , , link, ...slots] = line.split(' ');
          return {
            id: id!,
            port: Number(/:(\d+)@/.exec(addr!)?.[1]),
            role: flags!.includes('master') ? 'master' : 'replica',
            alive: link === 'connected' && !/fail/.test(flags!),
            slots: slots.filter((s) => !s.startsWith('[')).map((s) => {
              const [a, b] = s.split('-').map(Number);
              return [a!, b ?? a!] as [number, number];
            }),
          } satisfies ClusterNodeInfo;
        });
      } catch (err) {
        lastErr = err;
      }
    }
    throw new Error(`no node answers CLUSTER NODES: ${String(lastErr)}`);
  }

  /** The port of the master serving a slot. */
  async masterOf(slot: number): Promise<number> {
    const master = (await this.nodes()).find((n) => n.role === 'master' && n.alive && n.slots.some(([a, b]) => slot >= a && slot <= b));
    if (!master) throw new Error(`no live master serves slot ${slot}`);
    return master.port;
  }

  /** Every slot served by a live master, every live node reporting cluster_state:ok, every replica in sync. */
  async waitHealthy(timeoutMs: number): Promise<void> {
    await this.waitFor(
      async () => {
        const nodes = await this.nodes();
        const served = nodes.filter((n) => n.role === 'master' && n.alive).reduce((sum, n) => sum + n.slots.reduce((s, [a, b]) => s + b - a + 1, 0), 0);
        if (served !== 16384) return false;
        for (const port of this.livePorts()) {
          if (!(await this.cmd(port, 'CLUSTER', 'INFO')).includes('cluster_state:ok')) return false;
          const repl = await this.cmd(port, 'INFO', 'replication');
          if (repl.includes('role:slave') && !repl.includes('master_link_status:up')) return false;
        }
        return true;
      },
      timeoutMs,
      'the Redis Cluster to be healthy',
    );
  }

  /** SIGKILLs one node (by the pid this helper started) and waits for it to exit. */
  async kill(port: number): Promise<void> {
    const proc = this.procs.get(port);
    this.procs.delete(port);
    if (!proc || proc.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill('SIGKILL');
    });
  }

  /** Starts a killed node again with its nodes.conf (and no data): it rejoins as a replica of whoever took its slots. */
  async restart(port: number): Promise<void> {
    if (this.procs.has(port)) throw new Error(`:${port} is running`);
    this.spawnNode(port);
    await this.waitFor(async () => (await this.cmd(port, 'PING')) === 'PONG', 10_000, `redis-server :${port} to answer`);
    await this.waitFor(async () => (await this.nodes()).some((n) => n.port === port && n.alive && n.role === 'replica'), 30_000, `:${port} to rejoin as a replica`);
    await this.waitHealthy(30_000);
  }

  /** After kill(port): waits until a replica serves what that master served and the cluster is healthy again. */
  async waitFailover(killedPort: number, timeoutMs = 30_000): Promise<void> {
    await this.waitFor(async () => !(await this.nodes()).some((n) => n.port === killedPort && n.slots.length > 0), timeoutMs, `a replica to take over from :${killedPort}`);
    await this.waitHealthy(timeoutMs);
  }

  async stop(): Promise<void> {
    await Promise.all([...this.procs.keys()].map((p) => this.kill(p)));
    await rm(this.dir, { recursive: true, force: true });
  }

  private livePorts(): number[] {
    return this.ports.filter((p) => this.procs.has(p));
  }

  private async waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (;;) {
      try {
        if (await check()) return;
      } catch (err) {
        last = err;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

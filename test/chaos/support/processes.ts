import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { ServiceName } from '@umbra/protocol';
import { startEdge, type Edge, type Upstream } from '../../../scripts/lib/edge';
import { freePort } from '../../../scripts/lib/local-databases';

/**
 * Every Umbra service as its own OS process (the built `dist/services/<name>/src/main.js`, as
 * `npm start` runs them), behind the same edge, with direct control over each process: kill with
 * any signal, stop and continue, restart, and a command prefix (e.g. `faketime`) per instance.
 * Output goes to one log file per instance so a failure can be traced afterwards.
 */
export interface ServiceProcess {
  readonly name: ServiceName;
  readonly id: string;
  readonly port: number;
  child: ChildProcess | undefined;
  /** Prepended to `node main.js`, e.g. ['faketime', '-f', '+10m']. */
  prefix: string[];
  extraEnv: Record<string, string>;
  /** Set while the driver itself is taking the process down. */
  expectExit?: boolean;
}

export interface UnexpectedExit {
  id: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  at: number;
}

export const SERVICE_ORDER: ServiceName[] = ['key-directory', 'message-relay', 'gateway', 'media-upload', 'expiry-worker'];

/** Polls /readyz; a process that died meanwhile is restarted by the driver, so keep polling until the deadline. */
async function waitReady(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return;
      last = `${res.status}`;
    } catch (err) {
      last = String(err);
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`${url} not ready after ${timeoutMs} ms: ${last}`);
}

export class ProcessDriver {
  readonly processes: ServiceProcess[] = [];
  private readonly upstreams = {} as Record<ServiceName, Upstream[]>;
  private edge: Edge | undefined;
  private stopping = false;
  origin = '';
  /** Processes that died without the driver asking (restarted after 1 s, as a supervisor would). */
  readonly unexpectedExits: UnexpectedExit[] = [];

  constructor(
    private readonly opts: {
      /** Directory holding services/<name>/src/main.js */
      distDir: string;
      env: Record<string, string>;
      logDir: string;
      host?: string;
    },
  ) {
    for (const name of SERVICE_ORDER) this.upstreams[name] = [];
    fs.mkdirSync(opts.logDir, { recursive: true });
  }

  get host(): string {
    return this.opts.host ?? '127.0.0.1';
  }

  /** Adds to the environment of processes spawned from now on. */
  setEnv(extra: Record<string, string>): void {
    Object.assign(this.opts.env, extra);
  }

  async startEdge(): Promise<string> {
    this.edge = await startEdge({ port: 0, host: this.host, upstreams: this.upstreams });
    this.origin = `http://${this.host}:${this.edge.port}`;
    return this.origin;
  }

  /** Adds and starts `count` instances of a service (ids `<name>-1`, `<name>-2`, …). */
  async add(name: ServiceName, count: number, readyTimeoutMs = 60_000): Promise<void> {
    const started: ServiceProcess[] = [];
    for (let i = 1; i <= count; i++) {
      const p: ServiceProcess = { name, id: `${name}-${i}`, port: await freePort(), child: undefined, prefix: [], extraEnv: {} };
      this.processes.push(p);
      this.upstreams[name].push({ host: this.host, port: p.port });
      this.spawn(p);
      started.push(p);
    }
    await Promise.all(started.map((p) => this.ready(p, readyTimeoutMs)));
  }

  get(id: string): ServiceProcess {
    const p = this.processes.find((x) => x.id === id);
    if (!p) throw new Error(`no process ${id}`);
    return p;
  }

  of(name: ServiceName): ServiceProcess[] {
    return this.processes.filter((p) => p.name === name);
  }

  alive(p: ServiceProcess): boolean {
    return !!p.child && p.child.exitCode === null && p.child.signalCode === null;
  }

  pids(): number[] {
    return this.processes.filter((p) => this.alive(p)).map((p) => p.child!.pid!);
  }

  private spawn(p: ServiceProcess): void {
    const log = fs.openSync(path.join(this.opts.logDir, `${p.id}.log`), 'a');
    const main = path.join(this.opts.distDir, 'services', p.name, 'src', 'main.js');
    const [cmd, ...args] = [...p.prefix, process.execPath, main];
    p.child = spawn(cmd!, args, {
      env: { ...this.opts.env, ...p.extraEnv, PORT: String(p.port), HOST: this.host, INSTANCE_ID: p.id } as NodeJS.ProcessEnv,
      stdio: ['ignore', log, log],
    });
    fs.closeSync(log);
    p.expectExit = false;
    const child = p.child;
    child.once('error', (err) => fs.appendFileSync(path.join(this.opts.logDir, `${p.id}.log`), `spawn failed: ${err.message}\n`));
    child.once('exit', (code, signal) => {
      if (this.stopping || p.expectExit || p.child !== child) return;
      this.unexpectedExits.push({ id: p.id, code, signal, at: Date.now() });
      setTimeout(() => {
        if (!this.stopping && p.child === child) this.spawn(p);
      }, 1000);
    });
  }

  async ready(p: ServiceProcess, timeoutMs = 60_000): Promise<void> {
    try {
      await waitReady(`http://${this.host}:${p.port}/readyz`, timeoutMs);
    } catch (err) {
      throw new Error(`${p.id}: ${(err as Error).message}\n--- last lines of its log ---\n${this.logTail(p, 15)}`);
    }
  }

  logTail(p: ServiceProcess, lines: number): string {
    try {
      return fs.readFileSync(path.join(this.opts.logDir, `${p.id}.log`), 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /** Sends a signal to the instance's process (SIGKILL, SIGSTOP, SIGCONT, …). */
  signal(p: ServiceProcess, signal: NodeJS.Signals): void {
    if (signal === 'SIGKILL' || signal === 'SIGTERM' || signal === 'SIGINT') p.expectExit = true;
    if (this.alive(p)) p.child!.kill(signal);
  }

  async waitExit(p: ServiceProcess, timeoutMs = 15_000): Promise<void> {
    const child = p.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
      }, timeoutMs);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** kill -9, then a fresh process on the same port; resolves when it is ready. */
  async kill9AndRestart(p: ServiceProcess, downMs = 0): Promise<void> {
    this.signal(p, 'SIGKILL');
    await this.waitExit(p);
    if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
    this.spawn(p);
    await this.ready(p);
  }

  /** Graceful stop (SIGTERM) and start again, e.g. to change the prefix. */
  async restart(p: ServiceProcess): Promise<void> {
    this.signal(p, 'SIGCONT');
    this.signal(p, 'SIGTERM');
    await this.waitExit(p);
    this.spawn(p);
    await this.ready(p);
  }

  /** Stops everything: the edge, then every process (SIGCONT first, so a stopped one can exit). */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.edge?.close().catch(() => undefined);
    this.edge = undefined;
    await Promise.all(
      this.processes.map(async (p) => {
        this.signal(p, 'SIGCONT');
        this.signal(p, 'SIGTERM');
        await this.waitExit(p, 10_000);
      }),
    );
  }

  /** Synchronous last resort for process 'exit' handlers: SIGKILL whatever is still running. */
  killAllNow(): void {
    this.stopping = true;
    for (const p of this.processes) {
      try {
        if (this.alive(p)) p.child!.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

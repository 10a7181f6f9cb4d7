/**
 * The parent's side of the load generator processes: forks dist/bench/delivery-load.js N times,
 * sends each its share of the device pairs, and runs phases on all of them at once.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { DevicePair, FromLoad, ToLoad } from './load-protocol';

export class LoadProc {
  private waiting: { type: FromLoad['type']; resolve: (m: FromLoad) => void; reject: (e: Error) => void }[] = [];
  private readonly ready: Promise<FromLoad>;

  private constructor(readonly child: ChildProcess) {
    this.ready = this.next('ready');
    child.on('message', (m: FromLoad) => {
      if (m.type === 'error') {
        for (const w of this.waiting.splice(0)) w.reject(new Error(`load generator: ${m.message}`));
        return;
      }
      const i = this.waiting.findIndex((w) => w.type === m.type);
      if (i >= 0) this.waiting.splice(i, 1)[0]!.resolve(m);
    });
    child.on('exit', (code, signal) => {
      for (const w of this.waiting.splice(0)) w.reject(new Error(`load generator exited (${signal ?? code})`));
    });
  }

  static async start(script: string, nodeArgs: string[] = []): Promise<LoadProc> {
    const child = fork(script, [], { execArgv: nodeArgs, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const p = new LoadProc(child);
    await p.ready;
    return p;
  }

  get pid(): number | undefined {
    return this.child.exitCode === null ? this.child.pid : undefined;
  }

  private next<T extends FromLoad['type']>(type: T): Promise<Extract<FromLoad, { type: T }>> {
    return new Promise((resolve, reject) => this.waiting.push({ type, resolve: resolve as (m: FromLoad) => void, reject }));
  }

  request<T extends FromLoad['type']>(msg: ToLoad, answer: T): Promise<Extract<FromLoad, { type: T }>> {
    const p = this.next(answer);
    this.child.send(msg);
    return p;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) return resolve();
      this.child.once('exit', () => resolve());
      try {
        this.child.send({ type: 'stop' } satisfies ToLoad);
      } catch {
        this.child.kill('SIGTERM');
      }
      setTimeout(() => this.child.kill('SIGKILL'), 5000).unref();
    });
  }
}

/** Starts `n` load processes and gives each a contiguous share of the pairs. */
export async function startLoadProcs(n: number, origin: string, pairs: DevicePair[], size: number): Promise<LoadProc[]> {
  const script = path.join(__dirname, '..', 'delivery-load.js');
  const procs = await Promise.all(Array.from({ length: n }, () => LoadProc.start(script)));
  const per = Math.ceil(pairs.length / n);
  await Promise.all(procs.map((p, i) => p.request({ type: 'init', origin, pairs: pairs.slice(i * per, (i + 1) * per), size, seed: i }, 'ready')));
  return procs;
}

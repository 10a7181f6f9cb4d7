/**
 * CPU time of processes from /proc/<pid>/stat (utime + stime), grouped, for the delivery bench's
 * "server CPU per delivered message". Linux only; a pid that is gone reads as absent.
 */
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

let ticksPerSecond: number | undefined;

/** Clock ticks per second (CLK_TCK), 100 on nearly every Linux. */
export function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

export interface ProcStat {
  pid: number;
  ppid: number;
  /** utime + stime of the process itself, in ms. */
  cpuMs: number;
}

/** Reads one process's stat line; undefined when it is gone or unreadable. */
export function readProcStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); utime is field 14, stime field 15.
  const ppid = Number(rest[1]);
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  return { pid, ppid, cpuMs: ((utime + stime) * 1000) / clockTicks() };
}

/** Pids of a group at one moment (the list may change between samples: Postgres backends come and go). */
export type PidSource = () => Promise<number[]> | number[];

export type CpuSample = Record<string, Map<number, number>>;

/** Samples the CPU ms of every pid of every group; `delta` subtracts two samples per group. */
export class CpuSampler {
  constructor(private readonly groups: Record<string, PidSource>) {}

  async sample(): Promise<CpuSample> {
    const out: CpuSample = {};
    const lists = await Promise.all(Object.entries(this.groups).map(async ([name, src]) => [name, await src()] as const));
    for (const [name, pids] of lists) {
      const m = new Map<number, number>();
      for (const pid of new Set(pids)) {
        const st = readProcStat(pid);
        if (st) m.set(pid, st.cpuMs);
      }
      out[name] = m;
    }
    return out;
  }

  /**
   * CPU ms each group spent between two samples. A pid seen only in `after` counts from zero
   * (a backend that connected during the window); one seen only in `before` is gone and its
   * last part is missed (reported in `vanished`).
   */
  static delta(before: CpuSample, after: CpuSample): { ms: Record<string, number>; vanished: number } {
    const ms: Record<string, number> = {};
    let vanished = 0;
    for (const [name, endMap] of Object.entries(after)) {
      const startMap = before[name] ?? new Map<number, number>();
      let sum = 0;
      for (const [pid, end] of endMap) sum += end - (startMap.get(pid) ?? 0);
      for (const pid of startMap.keys()) if (!endMap.has(pid)) vanished++;
      ms[name] = sum;
    }
    return { ms, vanished };
  }
}

/**
 * CPU ms per group over a window, sampled every `intervalMs` so that a process that exits during
 * the window (a Postgres backend) loses at most one interval of its time. A pid first seen during
 * the window counts from zero.
 */
export class CpuWindow {
  private readonly acc: Record<string, number> = {};
  private last: CpuSample = {};
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  private vanished = 0;

  private constructor(private readonly sampler: CpuSampler) {}

  static async start(sampler: CpuSampler, intervalMs = 500): Promise<CpuWindow> {
    const w = new CpuWindow(sampler);
    w.last = await sampler.sample();
    for (const k of Object.keys(w.last)) w.acc[k] = 0;
    w.timer = setInterval(() => void (w.chain = w.chain.then(() => w.tick())), intervalMs);
    return w;
  }

  private async tick(): Promise<void> {
    const now = await this.sampler.sample();
    const { ms, vanished } = CpuSampler.delta(this.last, now);
    for (const [k, v] of Object.entries(ms)) this.acc[k] = (this.acc[k] ?? 0) + v;
    this.vanished += vanished;
    this.last = now;
  }

  /** Takes the last sample and returns CPU ms per group, and how many pids vanished between samples. */
  async stop(): Promise<{ ms: Record<string, number>; vanished: number }> {
    if (this.timer) clearInterval(this.timer);
    this.chain = this.chain.then(() => this.tick());
    await this.chain;
    return { ms: { ...this.acc }, vanished: this.vanished };
  }
}

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import { waitFor } from './harness';

/** The committed bin, exactly what `npx umbra` runs. */
export const UMBRA_BIN = path.join(process.cwd(), 'libs/cli/bin/umbra.cjs');

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a command to its end (never throws on a non-zero exit); killed after `killAfterMs`. */
export function runCommand(command: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; killAfterMs?: number; shell?: boolean } = {}): Promise<RunResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    // Its own process group: on timeout the whole group dies, grandchildren (`npx umbra` → node)
    // included; killing only the shell would leave them holding stdout, and 'close' would never come.
    const child = spawn(command, args, { cwd: opts.cwd, env: opts.env ?? process.env, shell: opts.shell ?? false, detached: true });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const killAfterMs = opts.killAfterMs ?? 60_000;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, killAfterMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (timedOut) stderr += `\n[killed after ${killAfterMs} ms]`;
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

export function runUmbra(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; killAfterMs?: number } = {}): Promise<RunResult> {
  return runCommand(process.execPath, [UMBRA_BIN, ...args], opts);
}

/** A long-running command (listen, link) with its output collected as it comes. */
export class Background {
  stdout = '';
  stderr = '';
  exitCode: number | null | undefined;
  private readonly exited: Promise<void>;

  constructor(readonly child: ChildProcessWithoutNullStreams) {
    child.stdout.on('data', (d: Buffer) => (this.stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => child.on('close', (code) => ((this.exitCode = code), resolve())));
  }

  static umbra(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Background {
    return new Background(spawn(process.execPath, [UMBRA_BIN, ...args], { cwd: opts.cwd, env: opts.env ?? process.env, detached: true }));
  }

  /** A shell line (e.g. `npx umbra …`, which runs umbra as a grandchild) in its own process group. */
  static shell(line: string, opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Background {
    return new Background(spawn('bash', ['-c', line], { cwd: opts.cwd, env: opts.env ?? process.env, detached: true }));
  }

  until(cond: (b: Background) => boolean, what: string, timeoutMs = 15_000): Promise<void> {
    return waitFor(() => cond(this) || this.exitCode !== undefined, timeoutMs, what).then(() => {
      if (!cond(this)) throw new Error(`${what}: the command exited (${this.exitCode}) first; stderr: ${this.stderr}`);
    });
  }

  /** Ctrl-C to the whole process group (as a terminal does), then the exit code. */
  async stop(): Promise<number | null | undefined> {
    if (this.exitCode === undefined) this.signal('SIGINT');
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([this.exited, new Promise((r) => (timer = setTimeout(r, 10_000)))]);
    clearTimeout(timer);
    if (this.exitCode === undefined) this.signal('SIGKILL');
    await this.exited;
    return this.exitCode;
  }

  private signal(sig: NodeJS.Signals): void {
    try {
      process.kill(-this.child.pid!, sig);
    } catch {
      this.child.kill(sig);
    }
  }

  wait(): Promise<void> {
    return this.exited;
  }
}

import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { ServiceName } from '@umbra/protocol';
import { migrateDatabase } from '@umbra/server';
import { startEdge, type Edge, type Upstream } from './edge';
import { startEmbeddedS3 } from './embedded-s3';

export interface StackOptions {
  /** Environment handed to every service (DATABASE_URL, REDIS_URL, PUBLIC_ORIGIN, …). */
  env: Record<string, string | undefined>;
  /** Directory holding dist/services/<name>/src/main.js */
  distDir: string;
  edgePort: number;
  host: string;
  instances: Partial<Record<ServiceName, number>>;
  basePort: number;
  s3Dir: string;
  s3Port: number;
  log: (line: string) => void;
  /** Where service stdout/stderr go; default: this process's. */
  serviceOutput?: 'inherit' | 'ignore' | 'pipe';
}

export interface RunningStack {
  origin: string;
  services: { name: ServiceName; instanceId: string; port: number; child: ChildProcess }[];
  stop: () => Promise<void>;
  restart: (instanceId: string) => Promise<void>;
}

const SERVICES: ServiceName[] = ['key-directory', 'message-relay', 'gateway', 'media-upload', 'expiry-worker'];

async function waitReady(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url);
      if (res.ok) return;
      last = `${res.status} ${await res.text()}`;
    } catch (err) {
      last = String(err);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} not ready after ${timeoutMs} ms: ${last}`);
}

/** Migrations, embedded S3 when none is configured, every service (several gateways), and the edge. */
export async function startStack(opts: StackOptions): Promise<RunningStack> {
  const env: Record<string, string | undefined> = { ...opts.env };
  const dbUrl = env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/umbra';
  env.DATABASE_URL = dbUrl;
  const applied = await migrateDatabase(dbUrl);
  opts.log(`migrations: ${applied.length ? applied.join(', ') : 'up to date'}`);

  let closeS3: (() => Promise<void>) | undefined;
  if (!env.S3_ENDPOINT) {
    const s3 = await startEmbeddedS3({ port: opts.s3Port, host: opts.host, directory: opts.s3Dir, bucket: env.S3_BUCKET ?? 'umbra-attachments' });
    env.S3_ENDPOINT = s3.endpoint;
    env.S3_ACCESS_KEY_ID = 'S3RVER';
    env.S3_SECRET_ACCESS_KEY = 'S3RVER';
    env.S3_FORCE_PATH_STYLE = 'true';
    closeS3 = s3.close;
    opts.log(`embedded S3 at ${s3.endpoint} (data in ${opts.s3Dir})`);
  }

  const origin = env.PUBLIC_ORIGIN ?? `http://${opts.host}:${opts.edgePort}`;
  env.PUBLIC_ORIGIN = origin;
  const running: RunningStack['services'] = [];
  const upstreams = {} as Record<ServiceName, Upstream[]>;
  let port = opts.basePort;
  let stopping = false;

  const spawnService = (name: ServiceName, instanceId: string, servicePort: number): ChildProcess => {
    const nodeArgs = env.UMBRA_NODE_ARGS ? env.UMBRA_NODE_ARGS.split(' ') : [];
    const child = spawn(process.execPath, [...nodeArgs, path.join(opts.distDir, 'services', name, 'src', 'main.js')], {
      env: { ...env, PORT: String(servicePort), HOST: opts.host, INSTANCE_ID: instanceId } as NodeJS.ProcessEnv,
      stdio: ['ignore', opts.serviceOutput ?? 'inherit', opts.serviceOutput ?? 'inherit', 'ipc'],
    });
    child.on('exit', (code, signal) => {
      const entry = running.find((s) => s.instanceId === instanceId);
      if (stopping || !entry || entry.child !== child) return;
      opts.log(`${instanceId} exited (${signal ?? code}); restarting in 1 s`);
      setTimeout(() => {
        if (!stopping) entry.child = spawnService(name, instanceId, servicePort);
      }, 1000);
    });
    return child;
  };

  for (const name of SERVICES) {
    const count = opts.instances[name] ?? 1;
    upstreams[name] = [];
    for (let i = 1; i <= count; i++) {
      const instanceId = `${name}-${i}`;
      const servicePort = port++;
      running.push({ name, instanceId, port: servicePort, child: spawnService(name, instanceId, servicePort) });
      upstreams[name].push({ host: opts.host, port: servicePort });
    }
  }
  await Promise.all(running.map((s) => waitReady(`http://${opts.host}:${s.port}/readyz`, 60_000)));
  const edge: Edge = await startEdge({ port: opts.edgePort, host: opts.host, upstreams });

  const stopChild = (child: ChildProcess) =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 15_000).unref();
    });

  return {
    origin,
    services: running,
    restart: async (instanceId) => {
      const entry = running.find((s) => s.instanceId === instanceId);
      if (!entry) throw new Error(`no instance ${instanceId}`);
      const old = entry.child;
      entry.child = undefined as unknown as ChildProcess;
      await stopChild(old);
      entry.child = spawnService(entry.name, instanceId, entry.port);
      await waitReady(`http://${opts.host}:${entry.port}/readyz`, 60_000);
    },
    stop: async () => {
      stopping = true;
      await edge.close();
      await Promise.all(running.map((s) => stopChild(s.child)));
      await closeS3?.();
    },
  };
}

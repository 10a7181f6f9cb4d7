import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { ServiceName } from '@umbra/protocol';
import { ENV_SCHEMA, migrateDatabase } from '@umbra/server';
import { startEmbeddedTurn, TurnMissingError } from './embedded-turn';
import { startEdge, type Edge, type Upstream } from './edge';
import { startEmbeddedS3 } from './embedded-s3';
import { wireLocalWitness } from './kt-trust';
import { s3ConnectSources, webContentSecurityPolicy, type WebRoot } from './web-static';

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
  /** The embedded TURN relay (coturn) for calls, when TURN_URLS is unset; skipped with a log line when coturn is missing. */
  turn?: { port: number; relayPorts: [number, number]; dir: string };
  log: (line: string) => void;
  /** Where service stdout/stderr go; default: this process's. */
  serviceOutput?: 'inherit' | 'ignore' | 'pipe';
  /** Services not started here (run by the developer on their planned port); the edge still routes to them. */
  skip?: ServiceName[];
  /** The built web client (dist/web), served by the edge at `/`; not served when the folder is missing. */
  webDir?: string;
}

/** A port the stack needs is taken; the message names it and what it was for. */
export class PortInUseError extends Error {}

/** Rejects with PortInUseError naming the first planned port something else already listens on. */
export async function assertPortsFree(host: string, ports: { port: number; what: string; hint?: string }[]): Promise<void> {
  for (const p of ports) {
    const free = await new Promise<boolean>((resolve) => {
      const server = net.createServer();
      server.once('error', () => resolve(false));
      server.listen({ port: p.port, host, exclusive: true }, () => server.close(() => resolve(true)));
    });
    if (!free) throw new PortInUseError(`port ${p.port} on ${host} (${p.what}) is already in use${p.hint ? `; ${p.hint}` : ''}`);
  }
}

export interface RunningStack {
  origin: string;
  /** The environment the services were given (with the embedded S3's settings when it runs). */
  serviceEnv: Record<string, string | undefined>;
  /** The port each skipped service is expected on. */
  skipped: { name: ServiceName; port: number }[];
  services: { name: ServiceName; instanceId: string; port: number; child: ChildProcess }[];
  stop: () => Promise<void>;
  restart: (instanceId: string) => Promise<void>;
}

const SERVICES: ServiceName[] = ['key-directory', 'message-relay', 'gateway', 'media-upload', 'expiry-worker', 'witness'];

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
  const skip = new Set(opts.skip ?? []);
  const plan: { name: ServiceName; instanceId: string; port: number }[] = [];
  let nextPort = opts.basePort;
  for (const name of SERVICES) {
    for (let i = 1; i <= (opts.instances[name] ?? 1); i++) plan.push({ name, instanceId: `${name}-${i}`, port: nextPort++ });
  }
  await assertPortsFree(opts.host, [
    { port: opts.edgePort, what: 'edge, the public origin', hint: 'set EDGE_PORT or PUBLIC_ORIGIN to move it' },
    ...plan.filter((p) => !skip.has(p.name)).map((p) => ({ port: p.port, what: p.instanceId, hint: 'set SERVICES_BASE_PORT to move the service ports' })),
    ...(env.S3_ENDPOINT ? [] : [{ port: opts.s3Port, what: 'embedded S3', hint: 'set S3_EMBEDDED_PORT to move it' }]),
    ...(opts.turn && !env.TURN_URLS ? [{ port: opts.turn.port, what: 'embedded TURN (coturn)', hint: 'set TURN_EMBEDDED_PORT to move it' }] : []),
  ]);
  const dbUrl = env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/umbra';
  env.DATABASE_URL = dbUrl;
  const applied = await migrateDatabase(dbUrl, { envelopePartitions: ENV_SCHEMA.shape.ENVELOPE_PARTITIONS.parse(env.ENVELOPE_PARTITIONS) });
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

  let closeTurn: (() => Promise<void>) | undefined;
  if (opts.turn && !env.TURN_URLS) {
    try {
      const turn = await startEmbeddedTurn({ host: opts.host === '0.0.0.0' ? '127.0.0.1' : opts.host, ...opts.turn, log: opts.log });
      env.TURN_SECRET = turn.secret;
      env.TURN_URLS = turn.urls.join(',');
      closeTurn = turn.close;
    } catch (err) {
      if (!(err instanceof TurnMissingError)) {
        await closeS3?.();
        throw err;
      }
      opts.log(`${err.message}; starting without calls (GET /v1/calls/relays answers CALLS_NOT_CONFIGURED)`);
    }
  }

  const origin = env.PUBLIC_ORIGIN ?? `http://${opts.host}:${opts.edgePort}`;
  env.PUBLIC_ORIGIN = origin;
  // Key transparency: the log pushes its tree heads to the local witness, which follows the local log.
  const witness = plan.find((p) => p.name === 'witness');
  wireLocalWitness(env, witness ? `http://${opts.host}:${witness.port}` : undefined);
  const running: RunningStack['services'] = [];
  const upstreams = {} as Record<ServiceName, Upstream[]>;
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

  for (const name of SERVICES) upstreams[name] = [];
  for (const { name, instanceId, port } of plan) {
    // A skipped service is one process the developer runs on its first planned port.
    if (skip.has(name) && upstreams[name].length > 0) continue;
    upstreams[name].push({ host: opts.host, port });
    if (skip.has(name)) opts.log(`${name} not started (skipped): the edge routes it to ${opts.host}:${port}`);
    else running.push({ name, instanceId, port, child: spawnService(name, instanceId, port) });
  }
  const stopChild = (child: ChildProcess) =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 15_000).unref();
    });

  // If this process exits before stop() (a signal during start, a crash), take the services along.
  const killAll = () => {
    for (const s of running) if (s.child && s.child.exitCode === null) s.child.kill('SIGTERM');
  };
  process.once('exit', killAll);

  let web: WebRoot | undefined;
  if (opts.webDir && existsSync(`${opts.webDir}/index.html`)) web = { dir: opts.webDir, csp: webContentSecurityPolicy(s3ConnectSources(env)) };
  else if (opts.webDir) opts.log(`web client not built (no ${opts.webDir}/index.html; npm run build builds it): ${origin}/ is not served`);
  let edge: Edge;
  try {
    await Promise.all(running.map((s) => waitReady(`http://${opts.host}:${s.port}/readyz`, 60_000)));
    edge = await startEdge({ port: opts.edgePort, host: opts.host, upstreams, ...(web ? { web } : {}) });
  } catch (err) {
    stopping = true;
    process.removeListener('exit', killAll);
    await Promise.all(running.map((s) => stopChild(s.child)));
    await closeS3?.();
    await closeTurn?.();
    throw err;
  }

  return {
    origin,
    serviceEnv: env,
    skipped: [...skip].flatMap((name) => upstreams[name].slice(0, 1).map((u) => ({ name, port: u.port }))),
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
      process.removeListener('exit', killAll);
      await edge.close();
      await Promise.all(running.map((s) => stopChild(s.child)));
      await closeS3?.();
      await closeTurn?.();
    },
  };
}

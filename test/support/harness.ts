import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import type { ServiceName } from '@umbra/protocol';
import { createServiceApp, migrateDatabase, type CoreOverrides, type ServiceApp, type ServiceDefinition } from '@umbra/server';
import { gatewayService } from '../../services/gateway/src/gateway.service';
import { keyDirectoryService } from '../../services/key-directory/src/key-directory.service';
import { messageRelayService } from '../../services/message-relay/src/message-relay.service';
import { mediaUploadService } from '../../services/media-upload/src/media-upload.service';
import { expiryWorkerService } from '../../services/expiry-worker/src/expiry-worker.service';
import { witnessService } from '../../services/witness/src/witness.service';
import { startEdge, type Edge, type Upstream } from '../../scripts/lib/edge';
import { startEmbeddedS3 } from '../../scripts/lib/embedded-s3';
import { startEmbeddedTurn, type EmbeddedTurn } from '../../scripts/lib/embedded-turn';
import { freePort } from './faults';

export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/umbra_test';
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

const DEFINITIONS: Record<ServiceName, ServiceDefinition> = {
  gateway: gatewayService,
  'key-directory': keyDirectoryService,
  'message-relay': messageRelayService,
  'media-upload': mediaUploadService,
  'expiry-worker': expiryWorkerService,
  witness: witnessService,
};

let migrated: Promise<string[]> | undefined;
export function migrateTestDatabase(): Promise<string[]> {
  migrated ??= migrateDatabase(TEST_DATABASE_URL);
  return migrated;
}

/** Every log line of every service in the stack, for assertions (and the no-plaintext proof). */
export class LogCapture extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    this.lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    cb();
  }
  text(): string {
    return this.lines.join('\n');
  }
}

export interface TestStackOptions {
  instances?: Partial<Record<ServiceName, number>>;
  env?: Record<string, string>;
  overrides?: CoreOverrides;
  withS3?: boolean;
  /** coturn on loopback (scripts/lib/embedded-turn.ts), TURN_SECRET and TURN_URLS set for the gateways. */
  withTurn?: boolean;
}

export interface TestInstance {
  name: ServiceName;
  id: string;
  svc: ServiceApp;
}

/**
 * The whole system in this process: every service as its own Nest app on an ephemeral port, real
 * Postgres, Redis and BullMQ (a fresh key prefix per stack), behind the same edge `npm start` uses.
 */
export class TestStack {
  readonly instances: TestInstance[] = [];
  readonly logs = new LogCapture();
  origin = '';
  env: Record<string, string> = {};
  private edge: Edge | undefined;
  /** Where each service's instances listen; edges that front this stack share this object, so they follow stopInstance/startInstance. */
  readonly upstreams = {} as Record<ServiceName, Upstream[]>;
  private closeS3: (() => Promise<void>) | undefined;
  /** The stack's coturn (withTurn). */
  turn: EmbeddedTurn | undefined;

  static async start(opts: TestStackOptions = {}): Promise<TestStack> {
    const stack = new TestStack();
    await stack.boot(opts);
    return stack;
  }

  private async boot(opts: TestStackOptions): Promise<void> {
    await migrateTestDatabase();
    for (const name of Object.keys(DEFINITIONS) as ServiceName[]) this.upstreams[name] = [];
    this.edge = await startEdge({ port: 0, host: '127.0.0.1', upstreams: this.upstreams });
    this.origin = `http://127.0.0.1:${this.edge.port}`;
    this.env = {
      NODE_ENV: 'test',
      DATABASE_URL: TEST_DATABASE_URL,
      DATABASE_POOL_SIZE: '4',
      REDIS_URL: TEST_REDIS_URL,
      REDIS_PREFIX: `t${randomBytes(5).toString('hex')}`,
      PUBLIC_ORIGIN: this.origin,
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      POW_DIFFICULTY: '4',
      SHUTDOWN_GRACE_MS: '5000',
      // The KT log appends accepted keys within ~0.1 s, so SDK lookups (checked against it) do not wait a second each.
      KT_SEQUENCE_INTERVAL_MS: '100',
      // Every test client is 127.0.0.1 behind the edge; each SDK lookup makes up to three KT reads.
      RATE_LIMIT_KT_LOOKUP_PER_IP_PER_MINUTE: '100000',
      ...opts.env,
    };
    if (opts.withS3) {
      const s3 = await startEmbeddedS3({ port: 0, host: '127.0.0.1', directory: `/tmp/umbra-test-s3-${this.env.REDIS_PREFIX}`, bucket: 'umbra-test' });
      this.closeS3 = s3.close;
      Object.assign(this.env, { S3_ENDPOINT: s3.endpoint, S3_BUCKET: 'umbra-test' });
    }
    if (opts.withTurn) {
      const base = 40_000 + Math.floor(Math.random() * 200) * 40;
      this.turn = await startEmbeddedTurn({ host: '127.0.0.1', port: await freePort(), relayPorts: [base, base + 39], dir: `/tmp/umbra-test-turn-${this.env.REDIS_PREFIX}` });
      Object.assign(this.env, { TURN_SECRET: this.turn.secret, TURN_URLS: this.turn.urls.join(',') });
    }
    const counts: Partial<Record<ServiceName, number>> = { 'key-directory': 1, 'message-relay': 1, gateway: 1, ...(opts.withS3 ? { 'media-upload': 1 } : {}), ...opts.instances };
    for (const [name, count] of Object.entries(counts) as [ServiceName, number][]) {
      for (let i = 1; i <= count; i++) await this.startInstance(name, `${name}-${i}-${randomBytes(3).toString('hex')}`, opts.overrides);
    }
  }

  async startInstance(name: ServiceName, id: string, overrides?: CoreOverrides): Promise<TestInstance> {
    const svc = await createServiceApp(DEFINITIONS[name], {
      env: { ...this.env, INSTANCE_ID: id },
      overrides,
      logDestination: this.logs,
    });
    const port = Number(new URL(svc.url).port);
    this.upstreams[name].push({ host: '127.0.0.1', port });
    const inst = { name, id, svc };
    this.instances.push(inst);
    return inst;
  }

  async stopInstance(inst: TestInstance): Promise<void> {
    const port = Number(new URL(inst.svc.url).port);
    const list = this.upstreams[inst.name];
    list.splice(list.findIndex((u) => u.port === port), 1);
    this.instances.splice(this.instances.indexOf(inst), 1);
    await inst.svc.app.close();
  }

  of(name: ServiceName): TestInstance[] {
    return this.instances.filter((i) => i.name === name);
  }

  async stop(): Promise<void> {
    for (const inst of [...this.instances].reverse()) await inst.svc.app.close().catch(() => undefined);
    this.instances.length = 0;
    await this.edge?.close();
    await this.closeS3?.();
    await this.turn?.close();
  }
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

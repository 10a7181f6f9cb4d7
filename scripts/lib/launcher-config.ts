import { z } from 'zod';
import type { ServiceName } from '@umbra/protocol';
import { DEFAULT_PORTS, ENV_SCHEMA } from '@umbra/server';

/**
 * The environment `npm start` reads (the services read ENV_SCHEMA from libs/server), validated once.
 * docs/operations.md's ports table is generated from this (test/deploy/reference.ts).
 */

/** Instances `npm start` runs per service, in port order. */
export const LAUNCHER_INSTANCES: Record<ServiceName, number> = {
  'key-directory': 1,
  'message-relay': 2,
  gateway: 2,
  'media-upload': 1,
  'expiry-worker': 1,
  witness: 1,
};

const SERVICES = Object.keys(LAUNCHER_INSTANCES) as [ServiceName, ...ServiceName[]];
const port = (fallback: number) => z.coerce.number().int().min(1).max(65535).default(fallback);

export const LAUNCHER_ENV_SCHEMA = z.object({
  EDGE_PORT: z.coerce.number().int().min(1).max(65535).optional(),
  SERVICES_BASE_PORT: port(3000),
  S3_EMBEDDED_PORT: port(9000),
  TURN_EMBEDDED_PORT: port(3478),
  TURN_EMBEDDED_RELAY_PORTS: z
    .string()
    .default('49160-49199')
    .transform((v) => v.split('-').map(Number))
    .refine((r) => r.length === 2 && r.every((p) => Number.isInteger(p) && p >= 1024 && p <= 65535) && r[0]! < r[1]!, 'must be <first>-<last>, 1024–65535')
    .transform((r) => [r[0]!, r[1]!] as [number, number]),
  UMBRA_POSTGRES_PORT: port(54329),
  UMBRA_REDIS_PORT: port(63799),
  BIND_HOST: z.string().min(1).default('127.0.0.1'),
  UMBRA_DATA_DIR: z.string().min(1).optional(),
  S3_EMBEDDED_DIR: z.string().min(1).optional(),
  UMBRA_SKIP_SERVICES: z
    .string()
    .default('')
    .transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean))
    .pipe(z.array(z.enum(SERVICES))),
});

export const LAUNCHER_ENV_DOCS: Record<keyof z.infer<typeof LAUNCHER_ENV_SCHEMA>, string> = {
  EDGE_PORT: 'Port of the local public origin (default: the port of `PUBLIC_ORIGIN`, else 8080).',
  SERVICES_BASE_PORT: 'First of the consecutive ports the service instances take, in the order of the ports table.',
  S3_EMBEDDED_PORT: 'Port of the embedded S3 (only when `S3_ENDPOINT` is unset).',
  TURN_EMBEDDED_PORT: 'TCP and UDP port of the embedded TURN relay for calls (coturn, only when `TURN_URLS` is unset and `turnserver` is installed).',
  TURN_EMBEDDED_RELAY_PORTS: 'UDP ports the embedded TURN relay allocates relays on (`first-last`).',
  UMBRA_POSTGRES_PORT: 'Port tried first for a private PostgreSQL when none answers at `DATABASE_URL` (another free port when taken).',
  UMBRA_REDIS_PORT: 'Port tried first for a private Redis when none answers at `REDIS_URL` (another free port when taken).',
  BIND_HOST: 'Address every launcher port binds to.',
  UMBRA_DATA_DIR: 'Where the embedded S3 and private databases keep their data (default `.umbra/`).',
  S3_EMBEDDED_DIR: 'Data of the embedded S3 (default `<UMBRA_DATA_DIR>/s3`).',
  UMBRA_SKIP_SERVICES: 'Comma-separated services `npm start` does not run, to run them yourself (`nest start gateway --watch`); the edge still routes to their port.',
};

export type LauncherConfig = z.infer<typeof LAUNCHER_ENV_SCHEMA>;

export interface PortUse {
  port: number;
  /** e.g. `gateway-1`, `edge`, `embedded S3`. */
  what: string;
  /** The variable that moves it. */
  env: keyof LauncherConfig;
  service?: ServiceName;
  instanceId?: string;
}

export function loadLauncherConfig(env: Record<string, string | undefined>): LauncherConfig {
  const r = LAUNCHER_ENV_SCHEMA.safeParse(env);
  if (!r.success) throw new Error(`invalid launcher configuration: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return r.data;
}

/** Every port `npm start` listens on itself (private databases excepted: they move when taken). */
export function launcherPorts(config: LauncherConfig, edgePort: number, withEmbeddedS3: boolean, withEmbeddedTurn = false): PortUse[] {
  const uses: PortUse[] = [{ port: edgePort, what: 'edge (the public origin)', env: 'EDGE_PORT' }];
  let next = config.SERVICES_BASE_PORT;
  for (const service of SERVICES) {
    for (let i = 1; i <= LAUNCHER_INSTANCES[service]; i++) {
      const instanceId = `${service}-${i}`;
      uses.push({ port: next++, what: instanceId, env: 'SERVICES_BASE_PORT', service, instanceId });
    }
  }
  if (withEmbeddedS3) uses.push({ port: config.S3_EMBEDDED_PORT, what: 'embedded S3', env: 'S3_EMBEDDED_PORT' });
  if (withEmbeddedTurn) uses.push({ port: config.TURN_EMBEDDED_PORT, what: 'embedded TURN (coturn)', env: 'TURN_EMBEDDED_PORT' });
  return uses;
}

function portOfDefaultUrl(key: 'DATABASE_URL' | 'REDIS_URL'): string {
  const field = (ENV_SCHEMA.shape as Record<string, { safeParse(v: unknown): { data?: unknown } }>)[key]!;
  const value = field.safeParse(undefined).data as { reveal(): string };
  const url = new URL(value.reveal());
  return `${url.hostname}:${url.port}`;
}

function range(ports: number[]): string {
  return ports.length === 1 ? `${ports[0]}` : `${ports[0]}–${ports[ports.length - 1]}`;
}

/** docs/operations.md's ports table: every port `npm start`, `npm test` and a service on its own use by default. */
export function portsTable(): string {
  const config = loadLauncherConfig({});
  const uses = launcherPorts(config, 8080, true);
  const rows: string[][] = [[`${uses[0]!.port}`, 'edge: the public origin of `npm start` (`/readyz` for the whole system; no `/metrics`)', '`EDGE_PORT`, else the port of `PUBLIC_ORIGIN`']];
  const instances = uses.filter((u) => u.service);
  const all = instances.map((u) => u.port);
  const per = (Object.keys(LAUNCHER_INSTANCES) as ServiceName[])
    .map((s) => `${s} ${range(instances.filter((u) => u.service === s).map((u) => u.port))}`)
    .join(', ');
  rows.push([range(all), `\`npm start\`'s service instances (each with its own \`/healthz\`, \`/readyz\`, \`/metrics\`): ${per}`, '`SERVICES_BASE_PORT` (the first; the rest follow)']);
  rows.push([`${config.S3_EMBEDDED_PORT}`, 'embedded S3 of `npm start`, when `S3_ENDPOINT` is unset', '`S3_EMBEDDED_PORT`']);
  rows.push([`${config.TURN_EMBEDDED_PORT}`, 'embedded TURN relay (coturn, TCP and UDP) of `npm start`, when `TURN_URLS` is unset and coturn is installed', '`TURN_EMBEDDED_PORT`']);
  rows.push([range(config.TURN_EMBEDDED_RELAY_PORTS), 'its relay ports (UDP)', '`TURN_EMBEDDED_RELAY_PORTS`']);
  rows.push([portOfDefaultUrl('DATABASE_URL').split(':')[1]!, `PostgreSQL \`npm start\` and \`npm test\` use when it answers (${portOfDefaultUrl('DATABASE_URL')})`, '`DATABASE_URL`; tests: `TEST_DATABASE_URL`']);
  rows.push([portOfDefaultUrl('REDIS_URL').split(':')[1]!, `Redis \`npm start\` and \`npm test\` use when it answers (${portOfDefaultUrl('REDIS_URL')})`, '`REDIS_URL`; tests: `TEST_REDIS_URL`']);
  rows.push([`${config.UMBRA_POSTGRES_PORT}`, 'private PostgreSQL started when none answers (another free port when taken; data in `.umbra/postgres`, `npm test`\'s in a temporary `.umbra/test-databases-*`)', '`UMBRA_POSTGRES_PORT`']);
  rows.push([`${config.UMBRA_REDIS_PORT}`, 'private Redis started when none answers (likewise)', '`UMBRA_REDIS_PORT`']);
  rows.push([
    range(Object.values(DEFAULT_PORTS).sort((a, b) => a - b)),
    `a service started on its own (\`node dist/services/<name>/src/main.js\`, \`nest start <name>\`): ${Object.entries(DEFAULT_PORTS).map(([s, p]) => `${s} ${p}`).join(', ')}; containers use 3000`,
    '`PORT`',
  ]);
  return ['| port | what | moved by |', '|---|---|---|', ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

/** docs/operations.md's table of the variables only `npm start` reads. */
export function launcherEnvTable(): string {
  const shape = LAUNCHER_ENV_SCHEMA.shape as Record<string, { safeParse(v: unknown): { success: boolean; data?: unknown } }>;
  const rows = Object.entries(LAUNCHER_ENV_DOCS).map(([key, doc]) => {
    const r = shape[key]!.safeParse(undefined);
    const def = r.data === undefined || (Array.isArray(r.data) && r.data.length === 0) ? '(unset)' : `\`${String(r.data)}\``;
    return `| \`${key}\` | ${def} | ${doc} |`;
  });
  return ['| variable | default | meaning |', '|---|---|---|', ...rows].join('\n');
}

import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { PUBLIC_PREFIXES } from '@umbra/protocol';
import { ENV_SCHEMA } from '@umbra/server';
import { hasBinary, readRepoFile, repoPath, SERVICES, UMBRA_IMAGE } from './support';

interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[] | string;
  environment?: Record<string, string | number | boolean | null>;
  healthcheck?: { test?: string[] | string; disable?: boolean };
  depends_on?: Record<string, { condition: string }> | string[];
  restart?: string;
  read_only?: boolean;
  tmpfs?: string[];
  cap_drop?: string[];
  security_opt?: string[];
  stop_grace_period?: string;
  ports?: string[];
  volumes?: string[];
}
interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

const ENV_KEYS = new Set(Object.keys(ENV_SCHEMA.shape));
const composeText = readRepoFile('docker-compose.yml');
const compose = parse(composeText, { merge: true }) as ComposeFile;
const envExample = Object.fromEntries(
  readRepoFile('.env.example')
    .split('\n')
    .filter((l) => /^[A-Z0-9_]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
) as Record<string, string>;

/** Compose's variable interpolation (${VAR}, ${VAR:-default}, ${VAR:?message}, $$) against .env.example. */
function interpolate(value: string, vars: Record<string, string>): string {
  return value.replace(/\$\$|\$\{([A-Z0-9_]+)(?:(:?[-?])([^}]*))?\}/g, (all, name: string | undefined, op: string | undefined, arg: string | undefined) => {
    if (all === '$$') return '$';
    const v = vars[name!];
    if (op?.endsWith('-')) return v === undefined || (op === ':-' && v === '') ? arg! : v;
    if (op?.endsWith('?') && (v === undefined || v === '')) throw new Error(`${name} is required: ${arg}`);
    return v ?? '';
  });
}

const services = Object.entries(compose.services);
const umbra = services.filter(([, s]) => s.image?.startsWith(`${UMBRA_IMAGE}:`));
const dependsOn = (s: ComposeService): Record<string, { condition: string }> =>
  Array.isArray(s.depends_on) ? Object.fromEntries(s.depends_on.map((d) => [d, { condition: 'service_started' }])) : (s.depends_on ?? {});
/** One-shot services: others wait for them with service_completed_successfully. */
const oneShots = new Set(services.flatMap(([, s]) => Object.entries(dependsOn(s)).filter(([, d]) => d.condition === 'service_completed_successfully').map(([n]) => n)));
const commandOf = (s: ComposeService) => (Array.isArray(s.command) ? s.command : []);
const serviceOfCommand = (s: ComposeService) => /^dist\/services\/([a-z-]+)\/src\/main\.js$/.exec(commandOf(s)[1] ?? '')?.[1];

describe('docker-compose.yml', () => {
  it('runs every Umbra service (two gateways, two relays), the migration, Postgres 15, Redis 7, MinIO with its bucket, coturn and nginx', () => {
    const instances = (name: string) => umbra.filter(([, s]) => serviceOfCommand(s) === name).length;
    for (const name of SERVICES) expect(`${name}: ${instances(name)}`).toMatch(/: [1-9]/);
    expect(instances('gateway')).toBeGreaterThanOrEqual(2);
    expect(instances('message-relay')).toBeGreaterThanOrEqual(2);
    expect(compose.services.migrate?.command).toEqual(['node', 'dist/scripts/migrate.js']);
    expect(compose.services.postgres?.image).toMatch(/^postgres:15[.-]/);
    expect(compose.services.redis?.image).toMatch(/^redis:7[.-]/);
    expect(compose.services.minio?.image).toMatch(/^minio\/minio:/);
    expect(String(compose.services['minio-init']?.command)).toMatch(/mc mb --ignore-existing/);
    expect(compose.services.coturn?.command).toEqual(expect.arrayContaining(['--use-auth-secret', expect.stringMatching(/^--static-auth-secret=\$\{TURN_SECRET/)]));
    expect(compose.services.nginx?.ports).toEqual(['${UMBRA_HTTP_PORT:-8080}:8080']);
    // Only nginx and coturn are reachable from the host.
    expect(services.filter(([, s]) => s.ports).map(([n]) => n).sort()).toEqual(['coturn', 'nginx']);
  });

  it('every long-running service has a health check; one-shot services are awaited with service_completed_successfully', () => {
    expect([...oneShots].sort()).toEqual(['migrate', 'minio-init']);
    for (const [name, s] of services) {
      if (oneShots.has(name)) {
        expect(`${name} restart=${s.restart}`).toBe(`${name} restart=no`);
        continue;
      }
      expect(`${name} healthcheck=${Boolean(s.healthcheck?.test) && !s.healthcheck?.disable}`).toBe(`${name} healthcheck=true`);
    }
  });

  it('dependencies wait for health or completion, and exist', () => {
    for (const [name, s] of services) {
      for (const [dep, d] of Object.entries(dependsOn(s))) {
        expect(Object.keys(compose.services)).toContain(dep);
        const expected = oneShots.has(dep) ? 'service_completed_successfully' : 'service_healthy';
        expect(`${name} -> ${dep}: ${d.condition}`).toBe(`${name} -> ${dep}: ${expected}`);
      }
    }
    for (const [name, s] of umbra) {
      if (name === 'migrate') expect(Object.keys(dependsOn(s))).toEqual(['postgres']);
      else expect(Object.keys(dependsOn(s))).toEqual(expect.arrayContaining(['migrate', 'redis']));
    }
    expect(Object.keys(dependsOn(compose.services['media-upload']!))).toContain('minio-init');
  });

  it('images are pinned (a tag that is not latest)', () => {
    for (const [name, s] of services) {
      const image = interpolate(s.image ?? '', envExample);
      expect(`${name}: ${image}`).toMatch(/^[^:]+: [a-z0-9./-]+:[A-Za-z0-9._-]+$/);
      expect(image).not.toMatch(/:latest$/);
    }
  });

  it('Umbra containers: read-only root, /tmp in memory, no capabilities, no new privileges, a stop grace longer than SHUTDOWN_GRACE_MS', () => {
    for (const [name, s] of umbra) {
      expect({ name, read_only: s.read_only, tmpfs: s.tmpfs, cap_drop: s.cap_drop, security_opt: s.security_opt }).toEqual({
        name, read_only: true, tmpfs: ['/tmp'], cap_drop: ['ALL'], security_opt: ['no-new-privileges:true'],
      });
      const grace = Number(/^(\d+)s$/.exec(s.stop_grace_period ?? '')?.[1] ?? 10);
      const shutdownMs = Number(s.environment?.SHUTDOWN_GRACE_MS ?? 10_000);
      expect(grace * 1000).toBeGreaterThan(shutdownMs);
    }
  });

  it('every environment variable of an Umbra container is an ENV_SCHEMA key and the interpolated values pass ENV_SCHEMA', () => {
    expect(umbra.length).toBeGreaterThanOrEqual(SERVICES.length + 3);
    for (const [name, s] of umbra) {
      const env = Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, interpolate(String(v), envExample)]));
      for (const key of Object.keys(env)) expect(`${name}: ${key} in ENV_SCHEMA=${ENV_KEYS.has(key)}`).toMatch(/=true$/);
      const parsed = ENV_SCHEMA.safeParse(env);
      expect(parsed.success ? 'valid' : `${name}: ${JSON.stringify(parsed.error.issues)}`).toBe('valid');
      if (name.match(/-\d$/)) expect(env.INSTANCE_ID).toBe(name);
    }
  });

  it('named volumes are declared and used', () => {
    const declared = Object.keys(compose.volumes ?? {});
    const used = services.flatMap(([, s]) => (s.volumes ?? []).map((v) => v.split(':')[0]!).filter((v) => !v.startsWith('.') && !v.startsWith('/')));
    expect(declared.sort()).toEqual([...new Set(used)].sort());
    expect(declared).toEqual(expect.arrayContaining(['postgres-data', 'minio-data']));
  });

  it('secrets come from .env: required in the file, change-me placeholders in the committed .env.example', () => {
    for (const v of ['POSTGRES_PASSWORD', 'REDIS_PASSWORD', 'MINIO_ROOT_PASSWORD', 'S3_SECRET_ACCESS_KEY', 'TURN_SECRET']) {
      expect(composeText).toContain(`\${${v}:?`);
      expect(composeText).not.toMatch(new RegExp(`\\$\\{${v}:-`));
      expect(envExample[v]).toMatch(/^change-me/);
    }
    for (const key of Object.keys(envExample)) {
      if (/PASSWORD|SECRET/.test(key)) expect(`${key}=${envExample[key]}`).toMatch(/=change-me/);
    }
    expect(readRepoFile('.gitignore').split('\n')).toContain('.env');
  });

  it('`docker-compose config -q` accepts it (with .env.example)', () => {
    const tools: [string, string[]][] = [];
    if (hasBinary('docker-compose', ['version'])) tools.push(['docker-compose', []]);
    if (hasBinary('docker', ['compose', 'version'])) tools.push(['docker', ['compose']]);
    if (tools.length === 0) {
      console.warn('skipped `docker-compose config -q`: neither docker-compose (Debian package docker-compose) nor `docker compose` is installed; CI installs it');
      return;
    }
    for (const [cmd, pre] of tools) {
      const r = spawnSync(cmd, [...pre, '--env-file', '.env.example', '-f', 'docker-compose.yml', 'config', '-q'], { encoding: 'utf8', cwd: repoPath() });
      expect(`${cmd} ${pre.join(' ')}: exit ${r.status} ${r.stderr}`).toBe(`${cmd} ${pre.join(' ')}: exit 0 `);
      // Without an env file, a missing secret stops compose with a pointer to .env.example.
      const dir = mkdtempSync(path.join(tmpdir(), 'umbra-compose-'));
      try {
        writeFileSync(path.join(dir, 'docker-compose.yml'), composeText);
        const bare = spawnSync(cmd, [...pre, '-f', path.join(dir, 'docker-compose.yml'), 'config', '-q'], { encoding: 'utf8', cwd: dir });
        expect(bare.status).not.toBe(0);
        expect(bare.stderr).toMatch(/cp \.env\.example \.env/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  });
});

describe('deploy/nginx/nginx.conf', () => {
  const conf = readRepoFile('deploy', 'nginx', 'nginx.conf');
  const blocks = [...conf.matchAll(/location\s+(=|~)?\s*(\S+)\s*\{([^}]*)\}/g)].map((m) => ({ modifier: m[1], pattern: m[2]!, body: m[3]! }));
  const proxied = blocks.filter((b) => /proxy_pass\s+http:\/\//.test(b.body));
  /** `^/v1/auth(?:/|$)` → `/v1/auth`: the regex form of a PUBLIC_PREFIXES entry (the prefix itself or below it). */
  const prefixOf = (pattern: string) => {
    const m = /^\^(.+)\(\?:\/\|\$\)$/.exec(pattern);
    if (!m) throw new Error(`location ${pattern} is not of the form ^<prefix>(?:/|$)`);
    return m[1]!.replace(/\\\./g, '.');
  };
  const upstreams = Object.fromEntries([...conf.matchAll(/upstream\s+([a-z-]+)\s*\{([^}]*)\}/g)].map((m) => [m[1]!, [...m[2]!.matchAll(/server\s+([a-z0-9-]+):(\d+)/g)].map((s) => ({ host: s[1]!, port: Number(s[2]) }))]));

  it('proxied locations are exactly PUBLIC_PREFIXES, each to its service', () => {
    const routes = proxied.map((b) => {
      expect(b.modifier).toBe('~');
      return { prefix: prefixOf(b.pattern), service: /proxy_pass\s+http:\/\/([a-z-]+);/.exec(b.body)![1]! };
    });
    const sort = <T extends { prefix: string }>(l: T[]) => [...l].sort((a, b) => a.prefix.localeCompare(b.prefix));
    expect(sort(routes)).toEqual(sort(PUBLIC_PREFIXES));
    // Anything else: the edge's own /healthz, and a 404 for the rest (so /metrics and /readyz stay internal).
    expect(blocks.filter((b) => !proxied.includes(b)).map((b) => `${b.modifier ?? ''}${b.pattern}`).sort()).toEqual(['/', '=/healthz']);
  });

  it('every upstream server is a compose service on the port its containers listen on, two gateways', () => {
    for (const [name, servers] of Object.entries(upstreams)) {
      expect(servers.length).toBeGreaterThan(0);
      for (const s of servers) {
        const svc = compose.services[s.host];
        expect(`${name}: ${s.host} exists=${svc !== undefined}`).toMatch(/=true$/);
        expect(serviceOfCommand(svc!)).toBe(name);
        expect(String(svc!.environment?.PORT)).toBe(String(s.port));
      }
    }
    expect(upstreams.gateway).toHaveLength(2);
    expect(Object.keys(compose.services.nginx!.depends_on ?? {})).toEqual(expect.arrayContaining(upstreams.gateway!.map((s) => s.host)));
  });

  it('the WebSocket location upgrades, keeps the forwarding headers and allows long-lived connections', () => {
    const ws = proxied.find((b) => prefixOf(b.pattern) === '/v1/ws')!;
    expect(ws.body).toMatch(/proxy_set_header Upgrade \$http_upgrade;/);
    expect(ws.body).toMatch(/proxy_set_header Connection \$connection_upgrade;/);
    // proxy_set_header in a location drops every inherited one: they must be repeated.
    for (const h of ['Host', 'X-Forwarded-For', 'X-Forwarded-Proto', 'X-Request-Id']) expect(ws.body).toContain(`proxy_set_header ${h} `);
    expect(Number(/proxy_read_timeout (\d+)s;/.exec(ws.body)?.[1])).toBeGreaterThanOrEqual(3600);
    expect(conf).toMatch(/proxy_http_version 1\.1;/);
  });

  it('passes `nginx -t` when nginx is installed (upstream hosts mapped to loopback)', () => {
    if (!hasBinary('nginx', ['-v'])) {
      console.warn('skipped `nginx -t`: nginx is not installed (Debian package nginx-light)');
      return;
    }
    const dir = mkdtempSync(path.join(tmpdir(), 'umbra-nginx-'));
    try {
      const file = path.join(dir, 'nginx.conf');
      writeFileSync(file, conf.replace(/server\s+[a-z0-9-]+:(\d+)/g, 'server 127.0.0.1:$1'));
      // Output to a file: libuv's stdio pipes are sockets, which nginx cannot open as /dev/stdout.
      const out = openSync(path.join(dir, 'out.log'), 'w');
      const r = spawnSync('nginx', ['-t', '-p', dir, '-c', file], { stdio: ['ignore', out, out] });
      closeSync(out);
      expect(`${r.status} ${readFileSync(path.join(dir, 'out.log'), 'utf8')}`).toMatch(/^0 [\s\S]*test is successful/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is mounted read-only into the nginx service', () => {
    expect(compose.services.nginx!.volumes).toContain('./deploy/nginx/nginx.conf:/etc/nginx/nginx.conf:ro');
    expect(existsSync(repoPath('deploy', 'nginx', 'nginx.conf'))).toBe(true);
  });
});

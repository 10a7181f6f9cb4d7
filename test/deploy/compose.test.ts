import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { TURN_DENIED_PEER_RANGES, TURN_HARDENING } from '../../scripts/lib/embedded-turn';
import { LIMITS, PUBLIC_PREFIXES, ROUTES, serviceForPath, type RouteDef } from '@umbra/protocol';
import { ENV_SCHEMA } from '@umbra/server';
import { s3ConnectSources, webContentSecurityPolicy } from '../../scripts/lib/web-static';
import { cspOf, hasBinary, readRepoFile, renderWebCsp, repoPath, SERVICES, toolMissing, UMBRA_IMAGE, WEB_CSP_INCLUDE, withRenderedCsp } from './support';

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
    // Only nginx, coturn and MinIO's S3 API (attachments go there with pre-signed URLs) are reachable from the host.
    expect(services.filter(([, s]) => s.ports).map(([n]) => n).sort()).toEqual(['coturn', 'minio', 'nginx']);
    expect(compose.services.minio?.ports).toEqual(['${UMBRA_S3_PORT:-9000}:9000']);
  });

  it("coturn has the shipped hardening (the embedded relay's, without its loopback allowance), and the gateways issue credentials for it", () => {
    const command = compose.services.coturn!.command as string[];
    for (const flag of TURN_HARDENING) expect(command).toContain(`--${flag}`);
    expect(command.filter((c) => c.startsWith('--denied-peer-ip=')).map((c) => c.slice('--denied-peer-ip='.length))).toEqual(TURN_DENIED_PEER_RANGES);
    expect(command).not.toContain('--allow-loopback-peers');
    const gateways = umbra.filter(([, s]) => serviceOfCommand(s) === 'gateway');
    for (const [, g] of gateways) {
      const env = (g as { environment: Record<string, string> }).environment;
      expect(env.TURN_SECRET).toMatch(/^\$\{TURN_SECRET:\?/);
      expect(env.TURN_URLS).toMatch(/^turn:\$\{TURN_EXTERNAL_IP:-127\.0\.0\.1\}:3478\?transport=udp,/);
    }
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
    if (tools.length === 0 && toolMissing('docker-compose', 'docker-compose')) return;
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

describe('client addresses and Redis in compose', () => {
  it('trusts exactly nginx, at its fixed address, for X-Forwarded-For', () => {
    const nginx = compose.services.nginx as ComposeService & { networks?: Record<string, { ipv4_address?: string }> };
    const address = nginx.networks?.default?.ipv4_address;
    expect(address).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    for (const [name, s] of umbra) expect(`${name} ${s.environment?.TRUSTED_PROXIES}`).toBe(`${name} ${address}/32`);
    const subnet = (parse(composeText) as { networks?: { default?: { ipam?: { config?: { subnet?: string }[] } } } }).networks?.default?.ipam?.config?.[0]?.subnet;
    expect(subnet?.split('/')[0]!.split('.').slice(0, 3)).toEqual(address!.split('.').slice(0, 3));
  });

  it('keeps rate-limit counters in their own evicting Redis; the BullMQ Redis stays noeviction', () => {
    const args = (s: ComposeService | undefined) => (Array.isArray(s?.command) ? s!.command : []);
    const flag = (s: ComposeService | undefined, f: string) => args(s)[args(s).indexOf(f) + 1];
    expect(flag(compose.services.redis, '--maxmemory-policy')).toBe('noeviction');
    expect(flag(compose.services['redis-limits'], '--maxmemory-policy')).toMatch(/^(volatile-ttl|allkeys-lru|volatile-lru)$/);
    expect(flag(compose.services['redis-limits'], '--maxmemory')).toMatch(/^\d+mb$/);
    for (const [name, s] of umbra) {
      expect(`${name} ${String(s.environment?.RATE_LIMIT_REDIS_URL)}`).toMatch(/@redis-limits:6379$/);
      expect(`${name} ${String(s.environment?.REDIS_URL)}`).toMatch(/@redis:6379$/);
    }
  });
});

describe('connection pooling in compose (PgBouncer, transaction mode)', () => {
  const bouncer = compose.services.pgbouncer!;
  const env = (s: ComposeService) => Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, interpolate(String(v), envExample)]));

  it('runs PgBouncer in transaction mode in front of postgres, after postgres is healthy', () => {
    expect(bouncer.image).toMatch(/^edoburu\/pgbouncer:v?1\.\d+\.\d+/);
    const e = env(bouncer);
    expect({ host: e.DB_HOST, port: e.DB_PORT, db: e.DB_NAME, user: e.DB_USER, mode: e.POOL_MODE, listen: e.LISTEN_PORT }).toEqual({ host: 'postgres', port: '5432', db: 'umbra', user: 'umbra', mode: 'transaction', listen: '6432' });
    expect(composeText).toMatch(/DB_PASSWORD: \$\{POSTGRES_PASSWORD:\?/);
    expect(dependsOn(bouncer)).toEqual({ postgres: { condition: 'service_healthy' } });
    expect(bouncer.healthcheck?.test).toEqual(expect.arrayContaining(['pg_isready', '6432']));
    expect(bouncer.ports).toBeUndefined();
  });

  it('every service reaches Postgres through the pooler and waits for it; only the migration connects directly', () => {
    const poolSize = Number(env(umbra[0]![1]).DATABASE_POOL_SIZE);
    let clients = 0;
    for (const [name, s] of umbra) {
      const url = new URL(env(s).DATABASE_URL!);
      if (name === 'migrate') {
        expect(`${name} ${url.host}`).toBe(`${name} postgres:5432`);
        continue;
      }
      expect(`${name} ${url.host}${url.pathname}`).toBe(`${name} pgbouncer:6432/umbra`);
      expect(`${name} -> pgbouncer: ${dependsOn(s).pgbouncer?.condition}`).toBe(`${name} -> pgbouncer: service_healthy`);
      clients += Number(env(s).DATABASE_POOL_SIZE ?? poolSize);
    }
    // Every service's whole pool fits under max_client_conn; the server side stays under Postgres' default 100.
    const e = env(bouncer);
    expect(clients).toBeLessThanOrEqual(Number(e.MAX_CLIENT_CONN));
    expect(Number(e.MAX_DB_CONNECTIONS)).toBeGreaterThanOrEqual(Number(e.DEFAULT_POOL_SIZE));
    expect(Number(e.MAX_DB_CONNECTIONS)).toBeLessThan(100);
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
    expect(blocks.filter((b) => !proxied.includes(b)).map((b) => `${b.modifier ?? ''}${b.pattern}`).sort()).toEqual(['/', '=/healthz', '@payload_too_large']);
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
    if (!hasBinary('nginx', ['-v']) && toolMissing('nginx', 'nginx-light')) return;
    const dir = mkdtempSync(path.join(tmpdir(), 'umbra-nginx-'));
    try {
      const file = path.join(dir, 'nginx.conf');
      writeFileSync(file, withRenderedCsp(conf, dir, 'http://localhost:9000').replace(/server\s+[a-z0-9-]+:(\d+)/g, 'server 127.0.0.1:$1'));
      // Output to a file: libuv's stdio pipes are sockets, which nginx cannot open as /dev/stdout.
      const out = openSync(path.join(dir, 'out.log'), 'w');
      const r = spawnSync('nginx', ['-t', '-p', dir, '-c', file], { stdio: ['ignore', out, out] });
      closeSync(out);
      expect(`${r.status} ${readFileSync(path.join(dir, 'out.log'), 'utf8')}`).toMatch(/^0 [\s\S]*test is successful/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('overwrites X-Forwarded-For with the peer address everywhere (never appends a client-sent one)', () => {
    const sets = [...conf.matchAll(/proxy_set_header\s+X-Forwarded-For\s+(\S+);/g)].map((m) => m[1]);
    expect(sets.length).toBeGreaterThanOrEqual(2);
    for (const v of sets) expect(v).toBe('$remote_addr');
    expect(conf).not.toContain('$proxy_add_x_forwarded_for');
    expect(conf).not.toMatch(/real_ip_header|set_real_ip_from/);
  });

  it("allows each location exactly the largest body its routes take (the services' limits), and answers its own 413 in JSON", () => {
    const bytes = (v: string) => Number(/^(\d+)([km]?)$/.exec(v)![1]) * ({ '': 1, k: 1024, m: 1024 * 1024 } as Record<string, number>)[/^(\d+)([km]?)$/.exec(v)![2]!]!;
    const httpLimit = bytes(/^\s{2}client_max_body_size\s+(\S+);/m.exec(conf)![1]!);
    expect(httpLimit).toBe(LIMITS.DEFAULT_HTTP_BODY_BYTES);
    for (const b of proxied) {
      const prefix = prefixOf(b.pattern);
      if (prefix === '/v1/ws') continue;
      const own = /client_max_body_size\s+(\S+);/.exec(b.body)?.[1];
      const routes = (Object.values(ROUTES) as RouteDef[]).filter((r) => serviceForPath(r.path) && (r.path === prefix || r.path.startsWith(`${prefix}/`)) && r.body);
      const needed = Math.max(LIMITS.DEFAULT_HTTP_BODY_BYTES, ...routes.map((r) => r.maxBodyBytes ?? LIMITS.DEFAULT_HTTP_BODY_BYTES));
      expect(`${prefix} ${own ? bytes(own) : httpLimit}`).toBe(`${prefix} ${needed}`);
    }
    expect(conf).toMatch(/^\s*error_page 413 = @payload_too_large;/m);
    const body = /location @payload_too_large \{[^']*return 413 '([^']+)';/.exec(conf)![1]!;
    expect(JSON.parse(body)).toEqual({ error: { code: 'PAYLOAD_TOO_LARGE', message: expect.any(String) } });
    expect(/location @payload_too_large \{[^}]*default_type application\/json;/.test(conf)).toBe(true);
  });

  it('logs paths with attachment ids and other opaque segments redacted', () => {
    const format = /log_format json[\s\S]*?;\n/.exec(conf)![0];
    expect(format).toContain('"uri":"$umbra_log_uri"');
    expect(format).not.toMatch(/\$uri\b|\$request_uri|\$args|\$query_string/);
    const m = /map \$uri \$umbra_log_uri \{\s*"~([^"]+)"\s+"([^"]+)";\s*default \$uri;\s*\}/.exec(conf)!;
    const re = new RegExp(m[1]!);
    const redact = (uri: string) => {
      const hit = re.exec(uri);
      return hit ? m[2]!.replace(/\$\{(\w+)\}/g, (_a, g: string) => hit.groups?.[g] ?? '') : uri;
    };
    const id = 'AbCdEfGhIjKlMnOpQrSt_-';
    expect(redact(`/v1/attachments/${id}`)).toBe('/v1/attachments/:id');
    expect(redact(`/v1/attachments/${id}/complete`)).toBe('/v1/attachments/:id/complete');
    expect(redact(`/v1/provisioning/${'c'.repeat(43)}/reply`)).toBe('/v1/provisioning/:id/reply');
    expect(redact('/v1/messages/ack')).toBe('/v1/messages/ack');
    expect(redact('/v1/accounts/pow')).toBe('/v1/accounts/pow');
  });

  it("the web client's CSP allows the S3 endpoint browsers upload to, and MinIO's CORS allows the public origin", () => {
    const env = (s: ComposeService) => Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, interpolate(String(v), envExample)]));
    const svc = env(umbra[0]![1]);
    const nginx = env(compose.services.nginx!);
    // What the services sign URLs for (S3_PUBLIC_ENDPOINT) is what the page may connect to.
    expect(svc.S3_PUBLIC_ENDPOINT).toBe(envExample.S3_PUBLIC_ENDPOINT);
    expect(nginx.WEB_CONNECT_SRC).toBe(s3ConnectSources(svc).join(' '));
    expect(new URL(svc.S3_PUBLIC_ENDPOINT!).port).toBe(interpolate(compose.services.minio!.ports![0]!, envExample).split(':')[0]);
    expect(conf).toContain(`include ${WEB_CSP_INCLUDE};`);
    expect(conf).not.toMatch(/add_header\s+Content-Security-Policy/i);
    expect(cspOf(renderWebCsp(nginx))).toBe(webContentSecurityPolicy(s3ConnectSources(svc)));
    expect(cspOf(renderWebCsp(nginx))).toContain(`connect-src 'self' ${new URL(svc.S3_PUBLIC_ENDPOINT!).origin};`);
    // The image renders the template into /tmp (writable under read_only), WEB_* variables only.
    const dockerfile = readRepoFile('deploy', 'nginx', 'Dockerfile');
    expect(dockerfile).toContain('COPY deploy/nginx/umbra-web-csp.conf.template /etc/nginx/templates/umbra-web-csp.conf.template');
    expect(dockerfile).toMatch(/^ENV NGINX_ENVSUBST_OUTPUT_DIR=\/tmp NGINX_ENVSUBST_FILTER=\^WEB_$/m);
    expect(readRepoFile('deploy', 'nginx', 'Dockerfile.dockerignore').split('\n')).toContain('!deploy/nginx/umbra-web-csp.conf.template');
    expect(compose.services.nginx!.tmpfs).toContain('/tmp');
    // MinIO takes CORS server-wide (no PutBucketCors in the community edition): the public origin only.
    const minio = env(compose.services.minio!);
    expect(minio.MINIO_API_CORS_ALLOW_ORIGIN).toBe(svc.PUBLIC_ORIGIN);
  });

  it('is mounted read-only into the nginx service', () => {
    expect(compose.services.nginx!.volumes).toContain('./deploy/nginx/nginx.conf:/etc/nginx/nginx.conf:ro');
    expect(existsSync(repoPath('deploy', 'nginx', 'nginx.conf'))).toBe(true);
  });
});

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { s3ConnectSources, webContentSecurityPolicy, webHeaders } from '../../scripts/lib/web-static';
import { withRenderedCsp } from '../deploy/support';
import { freePort } from '../support/faults';
import { waitFor } from '../support/harness';

/** A ConfigMap's data in k8s/base/web.yaml. */
function k8sWebConfigMap(name: string): Record<string, string> {
  const docs = parseAllDocuments(readFileSync('k8s/base/web.yaml', 'utf8')).map((d) => d.toJS() as { kind: string; metadata: { name: string }; data?: Record<string, string> });
  return docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name === name)!.data!;
}

/** A non-AWS store with a public endpoint (path-style), as compose runs MinIO. */
const COMPOSE_S3 = { S3_PUBLIC_ENDPOINT: 'http://localhost:9000', S3_BUCKET: 'umbra-attachments' };

/**
 * The nginx configs that serve the web client — compose's deploy/nginx/nginx.conf (which also routes
 * the API) and the Kubernetes web pods' ConfigMap — send the same headers as the local edge
 * (`npm start`): nginx (Debian nginx-light, installed by .ci/run) in front of a fresh build.
 */
describe.each([
  // connect-src as each deployment renders it at start: compose from S3_PUBLIC_ENDPOINT, k8s from the ConfigMap umbra-web-config.
  ['deploy/nginx/nginx.conf (compose)', () => readFileSync('deploy/nginx/nginx.conf', 'utf8'), () => s3ConnectSources(COMPOSE_S3).join(' ')],
  ['k8s/base/web.yaml (Kubernetes)', () => k8sWebConfigMap('umbra-web-nginx')['nginx.conf']!, () => k8sWebConfigMap('umbra-web-config').WEB_CONNECT_SRC!],
])('%s serves the web client', (_name, source, connectSrc) => {
  let dir: string;
  let nginx: ChildProcess | undefined;
  let origin = '';

  beforeAll(async () => {
    const binary = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p));
    if (!binary) throw new Error('nginx is missing: install Debian nginx-light (.ci/run does)');
    dir = mkdtempSync(path.join(tmpdir(), 'umbra-nginx-web-'));
    chmodSync(dir, 0o777);
    const web = path.join(dir, 'web');
    const build = spawnSync(process.execPath, ['node_modules/vite/bin/vite.js', 'build', '--config', 'clients/web/vite.config.mts', '--logLevel', 'warn'], {
      env: { ...process.env, UMBRA_WEB_OUT_DIR: web },
      encoding: 'utf8',
    });
    if (build.status !== 0) throw new Error(`vite build failed:\n${build.stdout}\n${build.stderr}`);
    chmodSync(web, 0o755);
    const listen = await freePort();
    const conf = withRenderedCsp(source(), dir, connectSrc())
      .replace('worker_processes auto;', 'worker_processes 1;')
      .replace('pid /tmp/nginx.pid;', `pid ${dir}/nginx.pid;`)
      .replace(/\/tmp\/(client_body|proxy|fastcgi|uwsgi|scgi)/g, `${dir}/$1`)
      .replace('access_log /dev/stdout json;', `access_log ${dir}/access.log json;`)
      .replace(/server\s+[a-z0-9-]+:3000[^;]*;/g, 'server 127.0.0.1:9;')
      .replace('root /usr/share/nginx/umbra-web;', `root ${web};`)
      .replace('listen 8080;', `listen 127.0.0.1:${listen};`)
      .replace('listen [::]:8080;', '');
    expect(conf).toContain(`root ${web};`);
    writeFileSync(path.join(dir, 'nginx.conf'), conf);
    nginx = spawn(binary, ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: 'ignore' });
    origin = `http://127.0.0.1:${listen}`;
    await waitFor(async () => (await fetch(`${origin}/healthz`).catch(() => undefined))?.status === 200, 5000, 'nginx');
  });

  afterAll(async () => {
    if (nginx && nginx.exitCode === null) {
      await new Promise<void>((r) => {
        nginx!.once('exit', () => r());
        nginx!.kill('SIGQUIT');
      });
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('serves index.html (revalidated) and hashed assets (immutable) with the edge’s CSP (connect-src: the origin and the S3 endpoint) and headers', async () => {
    const sources = connectSrc().split(' ');
    expect(sources.every((o) => new URL(o).origin === o)).toBe(true);
    const expected = webHeaders(webContentSecurityPolicy(sources));
    expect(expected['content-security-policy']).toContain(`connect-src 'self' ${sources.join(' ')};`);
    const index = await fetch(`${origin}/`);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toMatch(/^text\/html/);
    expect(index.headers.get('cache-control')).toBe('no-cache');
    for (const [name, value] of Object.entries(expected)) expect(`${name}: ${index.headers.get(name)}`).toBe(`${name}: ${value}`);
    expect(await index.text()).toMatch(/<script type="module" crossorigin src="\/assets\/index-[\w-]+\.js"><\/script>/);

    const js = readdirSync(path.join(dir, 'web', 'assets')).find((f) => f.endsWith('.js'))!;
    const asset = await fetch(`${origin}/assets/${js}`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(asset.headers.get('content-security-policy')).toBe(expected['content-security-policy']);
  });

  it("answers any other path with the services' 404 shape, so /metrics and /readyz stay internal", async () => {
    for (const p of ['/metrics', '/readyz', '/package.json', '/assets/../nginx.conf', '/assets/missing.js']) {
      const res = await fetch(`${origin}${p}`);
      expect(`${p}: ${res.status}`).toBe(`${p}: 404`);
    }
    const res = await fetch(`${origin}/metrics`);
    expect(await res.json()).toEqual({ error: { code: 'NOT_FOUND', message: 'no such route' } });
  });
});

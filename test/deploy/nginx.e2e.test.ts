import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROUTES } from '@umbra/protocol';
import { TestStack, waitFor } from '../support/harness';
import { freePort } from '../support/faults';
import { rawRequest } from '../support/raw-http';
import { hasBinary, readRepoFile, toolMissing, withRenderedCsp } from './support';

/**
 * deploy/nginx/nginx.conf itself, in front of a real stack: the upstream names are pointed at the
 * stack's services on loopback (which is what TRUSTED_PROXIES trusts by default). Needs nginx
 * (Debian nginx-light); without it the test says so and checks nothing.
 */
describe('deploy/nginx/nginx.conf in front of the services', () => {
  const available = hasBinary('nginx', ['-v']);
  let stack: TestStack;
  let dir: string;
  let nginx: ChildProcess | undefined;
  let origin = '';

  beforeAll(async () => {
    if (!available) return;
    stack = await TestStack.start({ instances: { 'message-relay': 0 }, env: { RATE_LIMIT_REGISTER_PER_IP_PER_HOUR: '2' } });
    const port = (name: string) => new URL(stack.of(name as never)[0]!.svc.url).port;
    const listen = await freePort();
    dir = mkdtempSync(path.join(tmpdir(), 'umbra-nginx-e2e-'));
    chmodSync(dir, 0o777);
    const conf = withRenderedCsp(readRepoFile('deploy', 'nginx', 'nginx.conf'), dir, 'http://localhost:9000')
      .replace('worker_processes auto;', 'worker_processes 1;')
      .replace('pid /tmp/nginx.pid;', `pid ${dir}/nginx.pid;`)
      .replace(/\/tmp\/(client_body|proxy|fastcgi|uwsgi|scgi)/g, `${dir}/$1`)
      .replace('access_log /dev/stdout json;', `access_log ${dir}/access.log json;`)
      .replace(/server\s+gateway-\d:3000[^;]*;/g, `server 127.0.0.1:${port('gateway')};`)
      .replace(/server\s+key-directory:3000;/, `server 127.0.0.1:${port('key-directory')};`)
      // media-upload is not started: its upstream is pointed at key-directory (only the access log is checked there).
      .replace(/server\s+media-upload:3000;/, `server 127.0.0.1:${port('key-directory')};`)
      .replace('listen 8080;', `listen 127.0.0.1:${listen};`)
      .replace('listen [::]:8080;', '');
    writeFileSync(path.join(dir, 'nginx.conf'), conf);
    nginx = spawn('nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: 'ignore' });
    origin = `http://127.0.0.1:${listen}`;
    await waitFor(async () => (await rawRequest(origin, 'GET', '/healthz').catch(() => ({ status: 0 }))).status === 200, 5000, 'nginx');
  });

  afterAll(async () => {
    if (nginx && nginx.exitCode === null) {
      await new Promise<void>((r) => {
        nginx!.once('exit', () => r());
        nginx!.kill('SIGQUIT');
      });
    }
    await stack?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('replaces a forged X-Forwarded-For, so the per-IP limit holds', async () => {
    if (!available && toolMissing('nginx', 'nginx-light')) return;
    const body = JSON.stringify({ deviceList: 'AA', authResponse: 'AA', pow: { challenge: 'A'.repeat(43), solution: 'A'.repeat(11) } });
    const codes: string[] = [];
    for (let i = 0; i < 4; i++) codes.push((await rawRequest(origin, 'POST', ROUTES.register.path, { body, headers: { 'x-forwarded-for': `198.51.100.${i + 1}` } })).json.error?.code ?? '');
    expect(codes.slice(2)).toEqual(['RATE_LIMITED', 'RATE_LIMITED']);
  });

  it("answers its own 413 in the services' JSON shape, and lets a route with a larger limit through", async () => {
    if (!available && toolMissing('nginx', 'nginx-light')) return;
    const big = JSON.stringify({ authResponse: 'A'.repeat(1024 * 1024) });
    const refused = await rawRequest(origin, 'POST', ROUTES.authToken.path, { body: big });
    expect(refused.status).toBe(413);
    expect(refused.headers['content-type']).toMatch(/application\/json/);
    expect(refused.json).toEqual({ error: { code: 'PAYLOAD_TOO_LARGE', message: expect.any(String) } });
    const send = await rawRequest(origin, 'POST', ROUTES.sendMessage.path, { body: big });
    expect(send.json.error?.code).toBe('UNAUTHENTICATED');
  });

  it('logs attachment ids and other opaque path segments as :id', async () => {
    if (!available && toolMissing('nginx', 'nginx-light')) return;
    const id = 'Zx9_AbCdEfGhIjKlMnOpQr';
    await rawRequest(origin, 'GET', `/v1/attachments/${id}`);
    await rawRequest(origin, 'POST', `/v1/attachments/${id}/complete`);
    await waitFor(() => readFileSync(path.join(dir, 'access.log'), 'utf8').includes('/v1/attachments/:id/complete'), 5000, 'access log');
    const log = readFileSync(path.join(dir, 'access.log'), 'utf8');
    expect(log).toContain('"uri":"/v1/attachments/:id"');
    expect(log).not.toContain(id);
  });
});

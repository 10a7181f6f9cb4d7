import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync } from 'node:fs';
import { MemoryStore, UmbraClient } from '@umbra/sdk';
import type { TurnCredentials } from '@umbra/protocol';
import { TestStack } from './support/harness';

/**
 * GET /v1/calls/relays against a real coturn (Debian `coturn`, .ci/run installs it): the credentials
 * the gateway issues allocate a relay and carry packets through it; wrong, expired or forged ones
 * do not. Without coturn installed this test fails, it never skips.
 */
const UCLIENT = '/usr/bin/turnutils_uclient';

async function newClient(origin: string): Promise<UmbraClient> {
  const client = await UmbraClient.open({ serverUrl: origin, store: new MemoryStore() });
  await client.createIdentity();
  await client.register();
  return client;
}

async function relays(origin: string, token?: string): Promise<{ status: number; body: { error?: { code: string } } & Partial<TurnCredentials>; headers: Headers }> {
  const res = await fetch(`${origin}/v1/calls/relays`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: res.status, body: (await res.json()) as never, headers: res.headers };
}

/**
 * Two clients allocate relays on coturn with these credentials and send 3 packets each through them.
 * Asynchronous: the stack runs in this process and must keep answering meanwhile.
 */
function relayWorks(port: number, username: string, password: string): Promise<{ ok: boolean; output: string }> {
  const args = ['-u', username, '-w', password, '-p', String(port), '-n', '3', '-m', '1', '-l', '100', '-y', '-e', '127.0.0.1', '127.0.0.1'];
  return new Promise((resolve) => {
    execFile(UCLIENT, args, { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      const output = `${stdout}${stderr}`;
      const totals = /start_mclient: tot_send_msgs=(\d+), tot_recv_msgs=(\d+)/.exec(output);
      const carried = totals !== null && Number(totals[1]) > 0 && totals[1] === totals[2];
      resolve({ ok: !err && carried && /Total lost packets 0 /.test(output), output });
    });
  });
}

describe('TURN credentials for calls (GET /v1/calls/relays)', () => {
  let stack: TestStack;
  let alice: UmbraClient;
  let bob: UmbraClient;

  beforeAll(async () => {
    if (!existsSync(UCLIENT)) throw new Error(`${UCLIENT} is missing: install Debian's coturn (apt-get install coturn; .ci/run does)`);
    stack = await TestStack.start({ withTurn: true, env: { RATE_LIMIT_TURN_PER_ACCOUNT_PER_HOUR: '4', TURN_CREDENTIAL_TTL_S: '600' } });
    alice = await newClient(stack.origin);
    bob = await newClient(stack.origin);
  });
  afterAll(async () => {
    await alice?.close();
    await bob?.close();
    await stack?.stop();
  });

  it('answers only an authenticated device', async () => {
    expect((await relays(stack.origin)).status).toBe(401);
    expect((await relays(stack.origin, 'not-a-token')).status).toBe(401);
  });

  it('issues TURN REST credentials that coturn accepts: expiry, an opaque per-account id, HMAC-SHA1 password, the relay URLs', async () => {
    const now = Math.floor(Date.now() / 1000);
    const { status, body, headers } = await relays(stack.origin, await alice.getToken());
    expect(status).toBe(200);
    expect(headers.get('cache-control')).toBe('no-store');
    expect(body.ttlSeconds).toBe(600);
    expect(body.urls).toEqual(stack.turn!.urls);
    const [expiry, opaque] = body.username!.split(':');
    expect(Number(expiry)).toBeGreaterThanOrEqual(now + 600 - 2);
    expect(Number(expiry)).toBeLessThanOrEqual(now + 600 + 2);
    expect(opaque).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(body.username).not.toContain(alice.identity.accountIdText);
    expect(body.password).toBe(createHmac('sha1', stack.turn!.secret).update(body.username!).digest('base64'));

    // Stable per account (coturn's per-user quota applies), different between accounts.
    const again = await relays(stack.origin, await alice.getToken());
    expect(again.body.username!.split(':')[1]).toBe(opaque);
    const other = await relays(stack.origin, await bob.getToken());
    expect(other.body.username!.split(':')[1]).not.toBe(opaque);

    const relay = await relayWorks(stack.turn!.port, body.username!, body.password!);
    expect({ ok: relay.ok, tail: relay.ok ? '' : relay.output.slice(-800) }).toEqual({ ok: true, tail: '' });
  });

  it('coturn refuses a wrong password, an expired username and a forged expiry', async () => {
    const { body } = await relays(stack.origin, await bob.getToken());
    expect((await relayWorks(stack.turn!.port, body.username!, 'd3JvbmcgcGFzc3dvcmQ=')).ok).toBe(false);
    const opaque = body.username!.split(':')[1]!;
    const expired = `${Math.floor(Date.now() / 1000) - 5}:${opaque}`;
    expect((await relayWorks(stack.turn!.port, expired, createHmac('sha1', stack.turn!.secret).update(expired).digest('base64'))).ok).toBe(false);
    // A client cannot extend its credentials: the password is bound to the expiry.
    const extended = `${Math.floor(Date.now() / 1000) + 86_400 * 365}:${opaque}`;
    expect((await relayWorks(stack.turn!.port, extended, body.password!)).ok).toBe(false);
  });

  it('is rate limited per account (429 with Retry-After), and other accounts are not affected', async () => {
    const carol = await newClient(stack.origin);
    try {
      const token = await carol.getToken();
      for (let i = 0; i < 4; i++) expect((await relays(stack.origin, token)).status).toBe(200);
      const limited = await relays(stack.origin, token);
      expect(limited.status).toBe(429);
      expect(limited.body.error?.code).toBe('RATE_LIMITED');
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
      const dave = await newClient(stack.origin);
      expect((await relays(stack.origin, await dave.getToken())).status).toBe(200);
      await dave.close();
    } finally {
      await carol.close();
    }
  });

  it('never logs the TURN secret or a password', async () => {
    const { body } = await relays(stack.origin, await alice.getToken());
    const logs = stack.logs.text();
    expect(logs.length).toBeGreaterThan(0);
    expect(logs.includes(stack.turn!.secret)).toBe(false);
    expect(logs.includes(body.password!)).toBe(false);
  });
});

describe('a server without TURN', () => {
  it('answers CALLS_NOT_CONFIGURED (404: no relay here), never a 5xx', async () => {
    const stack = await TestStack.start();
    const client = await newClient(stack.origin);
    try {
      const { status, body } = await relays(stack.origin, await client.getToken());
      expect(status).toBe(404);
      expect(body.error?.code).toBe('CALLS_NOT_CONFIGURED');
    } finally {
      await client.close();
      await stack.stop();
    }
  });
});

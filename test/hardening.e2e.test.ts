import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { b64uEncode, createSignedDeviceList } from '@umbra/crypto';
import { LIMITS, ROUTES, solvePow } from '@umbra/protocol';
import { Bus, type Channel } from '@umbra/server';
import { downloadFile, uploadFile } from '@umbra/sdk/node';
import { TestStack } from './support/harness';
import { ClientPool, openClient } from './support/clients';
import { rawRequest } from './support/raw-http';

/** A schema-valid registration body: a real device list (optionally with a broken signature) and a PoW. */
async function registration(origin: string, opts: { breakSignature?: boolean; pow?: { challenge: string; solution: string } } = {}) {
  const c = await openClient(origin);
  const id = await c.client.createIdentity();
  await c.client.close();
  const list = Uint8Array.from(id.deviceList);
  if (opts.breakSignature) list[list.length - 1]! ^= 0x01;
  return {
    deviceList: b64uEncode(list),
    authResponse: randomBytes(120).toString('base64url'),
    pow: opts.pow ?? { challenge: randomBytes(32).toString('base64url'), solution: randomBytes(LIMITS.POW_SOLUTION_BYTES).toString('base64url') },
  };
}

describe('hardening: client addresses, check order, body limits, capabilities in logs, device lists', () => {
  let stack: TestStack;
  let limited: TestStack;
  let dir: string;
  const pool = new ClientPool(() => stack.origin);

  beforeAll(async () => {
    stack = await TestStack.start({ withS3: true });
    // Its own Redis prefix: the per-IP budget of 3 is spent by these tests alone.
    limited = await TestStack.start({ instances: { gateway: 0, 'message-relay': 0 }, env: { RATE_LIMIT_REGISTER_PER_IP_PER_HOUR: '3' } });
    dir = await mkdtemp(path.join(tmpdir(), 'umbra-hardening-'));
  });
  afterAll(async () => {
    await pool.closeAll();
    await stack?.stop();
    await limited?.stop();
    await rm(dir, { recursive: true, force: true });
    await rm(`/tmp/umbra-test-s3-${stack?.env.REDIS_PREFIX}`, { recursive: true, force: true });
  });

  it('a forged X-Forwarded-For does not escape the per-IP registration limit (and over the limit, signatures are not checked)', async () => {
    const body = JSON.stringify(await registration(limited.origin, { breakSignature: true }));
    const codes: string[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await rawRequest(limited.origin, 'POST', ROUTES.register.path, { body, headers: { 'x-forwarded-for': `198.51.100.${i + 1}` } });
      codes.push(res.json.error?.code ?? String(res.status));
      if (res.status === 429) expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    }
    expect(codes.slice(0, 3)).not.toContain('RATE_LIMITED');
    expect(codes.slice(3)).toEqual(['RATE_LIMITED', 'RATE_LIMITED', 'RATE_LIMITED']);
  });

  it('checks the proof of work before any signature: bad PoW and bad signatures give POW_INVALID', async () => {
    const res = await rawRequest(stack.origin, 'POST', ROUTES.register.path, { body: JSON.stringify(await registration(stack.origin, { breakSignature: true })) });
    expect(res.json.error?.code).toBe('POW_INVALID');
    expect(res.status).toBe(400);
  });

  it('still verifies the signatures once the proof of work is right', async () => {
    const c = await openClient(stack.origin);
    const id = await c.client.createIdentity();
    await c.client.close();
    const pow = (await rawRequest(stack.origin, 'GET', ROUTES.powChallenge.path)).json as unknown as { challenge: string; difficulty: number };
    const solution = await solvePow(Buffer.from(pow.challenge, 'base64url'), id.accountId, pow.difficulty);
    const body = await registration(stack.origin, { breakSignature: true, pow: { challenge: pow.challenge, solution: b64uEncode(solution) } });
    // The PoW binds the account id, which the broken list still carries.
    const list = Uint8Array.from(id.deviceList);
    list[list.length - 1]! ^= 0x01;
    body.deviceList = b64uEncode(list);
    const res = await rawRequest(stack.origin, 'POST', ROUTES.register.path, { body: JSON.stringify(body) });
    expect(res.json.error?.code).toBe('BAD_SIGNATURE');
  });

  it('refuses a 1 MiB unauthenticated body on a small route with 413 PAYLOAD_TOO_LARGE, quickly', async () => {
    const body = JSON.stringify({ authResponse: 'A'.repeat(1024 * 1024) });
    const res = await rawRequest(stack.origin, 'POST', ROUTES.authToken.path, { body });
    expect(res.status).toBe(413);
    expect(res.json.error?.code).toBe('PAYLOAD_TOO_LARGE');
    expect(res.headers['content-type']).toMatch(/application\/json/);
    expect(res.ms).toBeLessThan(2000);
    // The service refuses it by itself too (the edge, like nginx, refuses it first).
    const direct = await rawRequest(stack.of('gateway')[0]!.svc.url, 'POST', ROUTES.authToken.path, { body });
    expect({ status: direct.status, code: direct.json.error?.code }).toEqual({ status: 413, code: 'PAYLOAD_TOO_LARGE' });
  });

  it('does not read a large body on an authenticated route without credentials', async () => {
    const res = await rawRequest(stack.origin, 'POST', ROUTES.sendMessage.path, { body: JSON.stringify({ x: 'A'.repeat(1024 * 1024) }) });
    expect(res.status).toBe(401);
    expect(res.json.error?.code).toBe('UNAUTHENTICATED');
  });

  it('the send route takes bodies above the default limit, up to its own', async () => {
    const alice = await pool.registered();
    const token = await alice.client.getToken();
    const headers = { authorization: `Bearer ${token}` };
    const big = await rawRequest(stack.origin, 'POST', ROUTES.sendMessage.path, { headers, body: JSON.stringify({ x: 'A'.repeat(256 * 1024) }) });
    expect(big.json.error?.code).toBe('VALIDATION_FAILED');
    const tooBig = await rawRequest(stack.origin, 'POST', ROUTES.sendMessage.path, { headers, body: JSON.stringify({ x: 'A'.repeat(LIMITS.MAX_HTTP_BODY_BYTES) }) });
    expect(tooBig.status).toBe(413);
    expect(tooBig.json.error?.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('keeps attachment ids (download capabilities) out of the logs', async () => {
    const alice = await pool.registered();
    const bob = await pool.registered();
    const file = path.join(dir, 'photo.bin');
    await writeFile(file, randomBytes(40_000));
    const pointer = await uploadFile(alice.client, file);
    await downloadFile(bob.client, pointer, path.join(dir, 'photo.out'));
    // Rejected requests naming the id are logged too: deleting someone else's upload, a bad sub-route.
    await expect(bob.client.api('DELETE', `/v1/attachments/${pointer.oid}`)).rejects.toMatchObject({ code: 'NOT_UPLOADER' });
    await expect(bob.client.api('POST', `/v1/attachments/${pointer.oid}/nope`, {})).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(stack.logs.text()).toContain('request rejected');
    expect(stack.logs.text()).not.toContain(pointer.oid);
  });

  it('a device-list update whose notification fails after the commit still succeeds, and the notification is retried', async () => {
    const alice = await pool.registered();
    const bus = stack.of('key-directory')[0]!.svc.app.get(Bus);
    const original = bus.publish.bind(bus);
    const published: unknown[] = [];
    let failures = 1;
    bus.publish = async <T>(channel: Channel<T>, message: T) => {
      if (channel.endsWith('devices-changed') && failures-- > 0) throw new Error('Connection is closed.');
      if (channel.endsWith('devices-changed')) published.push(message);
      return original(channel, message);
    };
    try {
      const id = alice.client.identity;
      const list = createSignedDeviceList({ aik: id.aik, listVersion: 2, issuedAt: Date.now(), certificates: [id.device.certificate] }, id.aikSk!);
      const res = await alice.client.api<{ listVersion: number }>('PUT', ROUTES.updateDevices.path, { deviceList: b64uEncode(list) });
      expect(res.listVersion).toBe(2);
      const account = await alice.client.getAccount(id.accountIdText);
      expect(account.listVersion).toBe(2);
      const deadline = Date.now() + 10_000;
      while (published.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(published).toEqual([expect.objectContaining({ listVersion: 2 })]);
      expect(stack.logs.text()).toMatch(/devices-changed.*(retry|failed)|(retry|failed).*devices-changed/i);
    } finally {
      bus.publish = original;
    }
  });
});

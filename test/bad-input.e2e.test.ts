import { createHash, randomBytes } from 'node:crypto';
import { io, type Socket } from 'socket.io-client';
import { DataSource } from 'typeorm';
import { b64uDecode, b64uEncode, createAuthResponse, verifySignedDeviceList, parseSignedDeviceList, createSignedDeviceList, createSignedHandleClaim, encodeAccountId, generateSecretKey } from '@umbra/crypto';
import { LIMITS, WS_PATH, checkPow, solvePow } from '@umbra/protocol';
import { createIdentity } from '@umbra/sdk';
import { TestStack, TEST_DATABASE_URL } from './support/harness';
import { randomContent, registeredClient, toDevice, type TestClient } from './support/clients';


type Case = { name: string; run: () => Promise<{ status: number; code: string }>; status: number; code: string };

describe('hostile and malformed input: clear 4xx, stable code, nothing stored changes, nothing crashes', () => {
  let stack: TestStack;
  let db: DataSource;
  let alice: TestClient;
  let bob: TestClient;
  let token: string;
  const cases: Case[] = [];

  async function snapshot(): Promise<unknown> {
    return db.query(
      `SELECT (SELECT count(*) FROM accounts)::int AS accounts, (SELECT count(*) FROM devices)::int AS devices,
              (SELECT count(*) FROM envelopes)::int AS envelopes,
              (SELECT md5(string_agg(encode(device_list, 'hex') || coalesce(handle, ''), ',' ORDER BY id)) FROM accounts) AS lists`,
    );
  }

  async function http(method: string, path: string, opts: { body?: unknown; raw?: string; type?: string; auth?: string | null } = {}) {
    const headers: Record<string, string> = {};
    if (opts.body !== undefined || opts.raw !== undefined) headers['content-type'] = opts.type ?? 'application/json';
    if (opts.auth !== null) headers.authorization = `Bearer ${opts.auth ?? token}`;
    const res = await fetch(`${stack.origin}${path}`, { method, headers, body: opts.raw ?? (opts.body !== undefined ? JSON.stringify(opts.body) : undefined) });
    const json = (await res.json().catch(() => ({}))) as { error?: { code?: string } };
    return { status: res.status, code: json.error?.code ?? '' };
  }

  async function challenge(): Promise<Uint8Array> {
    const res = (await (await fetch(`${stack.origin}/v1/auth/challenge`)).json()) as { nonce: string };
    return Buffer.from(res.nonce, 'base64url');
  }

  async function authResponse(over: Partial<{ origin: string; clientTime: number; nonce: Uint8Array; sk: Uint8Array; accountId: Uint8Array }> = {}) {
    const id = alice.client.identity;
    return b64uEncode(
      createAuthResponse(
        { origin: over.origin ?? stack.origin, accountId: over.accountId ?? id.accountId, deviceId: id.device.deviceId, nonce: over.nonce ?? (await challenge()), clientTime: over.clientTime ?? Date.now() },
        over.sk ?? id.device.dikSk,
      ),
    );
  }

  async function registerBody(over: { list?: Uint8Array; solution?: string; challenge?: string } = {}) {
    const id = createIdentity();
    const pow = (await (await fetch(`${stack.origin}/v1/accounts/pow`)).json()) as { challenge: string };
    const nonce = await challenge();
    const auth = b64uEncode(createAuthResponse({ origin: stack.origin, accountId: id.accountId, deviceId: id.device.deviceId, nonce, clientTime: Date.now() }, id.device.dikSk));
    return { deviceList: b64uEncode(over.list ?? id.deviceList), authResponse: auth, pow: { challenge: over.challenge ?? pow.challenge, solution: over.solution ?? 'AAAAAAAAAAA' } };
  }

  function socketCall(event: string, payload: unknown): Promise<{ status: number; code: string }> {
    return new Promise((resolve, reject) => {
      const s: Socket = io(stack.origin, { path: WS_PATH, transports: ['websocket'], auth: { token }, reconnection: false });
      s.on('connect', () => {
        s.timeout(5000).emit(event, payload, (err: Error | null, res: { ok: boolean; error?: { code: string } }) => {
          s.disconnect();
          if (err) return reject(err);
          resolve({ status: res.ok ? 200 : 400, code: res.error?.code ?? '' });
        });
      });
      s.on('connect_error', reject);
    });
  }

  function socketHandshake(auth: Record<string, unknown>): Promise<{ status: number; code: string }> {
    return new Promise((resolve) => {
      const s: Socket = io(stack.origin, { path: WS_PATH, transports: ['websocket'], auth, reconnection: false });
      s.on('connect', () => {
        s.disconnect();
        resolve({ status: 200, code: '' });
      });
      s.on('connect_error', (err: Error & { data?: { error?: { code: string } } }) => resolve({ status: 401, code: err.data?.error?.code ?? err.message }));
    });
  }

  const valid = () => ({ clientMessageId: randomContent(16), recipients: [toDevice(bob)] });
  const add = (name: string, status: number, code: string, run: Case['run']) => cases.push({ name, status, code, run });

  add('malformed JSON', 400, 'MALFORMED_JSON', () => http('POST', '/v1/auth/token', { raw: '{"authResponse": ' }));
  add('non-JSON content type', 415, 'UNSUPPORTED_MEDIA_TYPE', () => http('POST', '/v1/messages', { raw: 'hello', type: 'text/plain' }));
  add('wrong type for a field', 400, 'VALIDATION_FAILED', () => http('POST', '/v1/auth/token', { body: { authResponse: 42 } }));
  add('bad base64url', 400, 'BAD_ENCODING', () => http('POST', '/v1/auth/token', { body: { authResponse: 'not base64!' } }));
  add('padded (non-canonical) base64', 400, 'BAD_ENCODING', () => http('POST', '/v1/auth/token', { body: { authResponse: 'AAAA==' } }));
  add('garbage AuthResponse bytes', 400, 'BAD_AUTH_RESPONSE', () => http('POST', '/v1/auth/token', { body: { authResponse: randomContent(120) } }));
  add('challenge never issued', 401, 'AUTH_CHALLENGE_INVALID', async () => http('POST', '/v1/auth/token', { body: { authResponse: await authResponse({ nonce: randomBytes(32) }) } }));
  add('replayed challenge', 401, 'AUTH_CHALLENGE_INVALID', async () => {
    const body = { authResponse: await authResponse() };
    const first = await http('POST', '/v1/auth/token', { body });
    if (first.status !== 200) throw new Error('first use should succeed');
    return http('POST', '/v1/auth/token', { body });
  });
  add('wrong origin', 400, 'WRONG_ORIGIN', async () => http('POST', '/v1/auth/token', { body: { authResponse: await authResponse({ origin: 'https://evil.example' }) } }));
  add('client clock 10 minutes off', 400, 'CLOCK_SKEW', async () => http('POST', '/v1/auth/token', { body: { authResponse: await authResponse({ clientTime: Date.now() - 600_000 }) } }));
  add('signature by another key', 400, 'BAD_SIGNATURE', async () => http('POST', '/v1/auth/token', { body: { authResponse: await authResponse({ sk: generateSecretKey() }) } }));
  add('unknown account', 404, 'ACCOUNT_NOT_FOUND', async () => http('POST', '/v1/auth/token', { body: { authResponse: await authResponse({ accountId: randomBytes(32) }) } }));
  add('no token', 401, 'UNAUTHENTICATED', () => http('GET', `/v1/messages`, { auth: null }));
  add('forged token', 401, 'TOKEN_INVALID', () => http('GET', '/v1/messages', { auth: `umb1.${randomBytes(32).toString('base64url')}` }));
  add('expired token', 401, 'TOKEN_EXPIRED', async () => {
    const t = await alice.client.authenticate();
    await db.query('UPDATE auth_tokens SET expires_at = 1 WHERE token_hash = $1', [createHash('sha256').update(t).digest()]);
    return http('GET', '/v1/messages', { auth: t });
  });
  add('not an account id', 400, 'VALIDATION_FAILED', () => http('GET', '/v1/accounts/um1notanid'));
  add('upper-case (non-canonical) account id', 400, 'VALIDATION_FAILED', () => http('GET', `/v1/accounts/${alice.client.identity.accountIdText.toUpperCase()}`));
  add('account that does not exist', 404, 'ACCOUNT_NOT_FOUND', () => http('GET', `/v1/accounts/${encodeAccountId(randomBytes(32))}`));
  add('oversized envelope', 413, 'ENVELOPE_TOO_LARGE', () => http('POST', '/v1/messages', { body: { ...valid(), recipients: [toDevice(bob, randomContent(LIMITS.MAX_ENVELOPE_CONTENT_BYTES + 1))] } }));
  add('too many recipients', 413, 'TOO_MANY_RECIPIENTS', () => http('POST', '/v1/messages', { body: { ...valid(), recipients: Array.from({ length: LIMITS.MAX_RECIPIENTS_PER_SEND + 1 }, () => toDevice(bob, 'AA')) } }));
  add('same device twice', 400, 'DUPLICATE_RECIPIENT', () => http('POST', '/v1/messages', { body: { ...valid(), recipients: [toDevice(bob), toDevice(bob)] } }));
  add('unknown recipient account', 404, 'ACCOUNT_NOT_FOUND', () => http('POST', '/v1/messages', { body: { ...valid(), recipients: [{ ...toDevice(bob), accountId: encodeAccountId(randomBytes(32)) }] } }));
  add('wrong device set', 409, 'DEVICE_MISMATCH', () => http('POST', '/v1/messages', { body: { ...valid(), recipients: [{ ...toDevice(bob), deviceId: 1 }] } }));
  add('unknown envelope type', 400, 'VALIDATION_FAILED', () => http('POST', '/v1/messages', { body: { ...valid(), recipients: [{ ...toDevice(bob), type: 9 }] } }));
  add('unknown field', 400, 'VALIDATION_FAILED', () => http('POST', '/v1/messages', { body: { ...valid(), admin: true } }));
  add('urgent that is not a boolean', 400, 'VALIDATION_FAILED', () => http('POST', '/v1/messages', { body: { ...valid(), urgent: 'yes' } }));
  add('clientMessageId of the wrong length', 400, 'VALIDATION_FAILED', () => http('POST', '/v1/messages', { body: { ...valid(), clientMessageId: randomContent(8) } }));
  add('body over the HTTP limit', 413, 'PAYLOAD_TOO_LARGE', () => http('POST', '/v1/messages', { raw: JSON.stringify({ x: 'a'.repeat(LIMITS.MAX_HTTP_BODY_BYTES + 10) }) }));
  add('wrong proof of work', 400, 'POW_INVALID', async () => {
    const body = await registerBody();
    const accountId = verifySignedDeviceList(b64uDecode(body.deviceList)).accountId;
    const challengeBytes = b64uDecode(body.pow.challenge);
    const solution = new Uint8Array(8);
    while (checkPow(challengeBytes, accountId, solution, Number(stack.env.POW_DIFFICULTY))) solution[7]!++;
    return http('POST', '/v1/accounts', { body: { ...body, pow: { ...body.pow, solution: b64uEncode(solution) } }, auth: null });
  });
  add('proof-of-work challenge never issued', 400, 'POW_INVALID', async () => http('POST', '/v1/accounts', { body: await registerBody({ challenge: randomContent(32) }), auth: null }));
  add('tampered device list', 400, 'BAD_SIGNATURE', async () => {
    const list = createIdentity().deviceList;
    list[list.length - 1]! ^= 1;
    // Signatures are checked last (after the limit and the proof of work), so this one carries a valid proof.
    const body = await registerBody({ list });
    const solution = await solvePow(b64uDecode(body.pow.challenge), parseSignedDeviceList(list).accountId, Number(stack.env.POW_DIFFICULTY));
    return http('POST', '/v1/accounts', { body: { ...body, pow: { ...body.pow, solution: b64uEncode(solution) } }, auth: null });
  });
  add('truncated device list', 400, 'BAD_DEVICE_LIST', async () => http('POST', '/v1/accounts', { body: await registerBody({ list: createIdentity().deviceList.slice(0, 100) }), auth: null }));
  add('registration with list version 2', 400, 'BAD_DEVICE_LIST', async () => {
    const id = createIdentity();
    const list = createSignedDeviceList({ aik: id.aik, listVersion: 2, issuedAt: Date.now(), certificates: [id.device.certificate] }, id.aikSk!);
    return http('POST', '/v1/accounts', { body: await registerBody({ list }), auth: null });
  });
  add('invalid handle in a lookup', 400, 'INVALID_HANDLE', () => http('GET', '/v1/accounts/by-handle/a!'));
  add('handle claim signed by another key', 400, 'BAD_SIGNATURE', async () => {
    const claim = createSignedHandleClaim({ handle: 'mallory_x', accountId: alice.client.identity.accountId, claimVersion: Date.now(), issuedAt: Date.now() }, generateSecretKey());
    return http('PUT', '/v1/accounts/me/handle', { body: { claim: b64uEncode(claim) } });
  });
  add('device list of another account', 403, 'FORBIDDEN', async () => http('PUT', '/v1/accounts/me/devices', { body: { deviceList: b64uEncode(bob.client.identity.deviceList) } }));
  add('stale device list', 409, 'DEVICE_LIST_STALE', async () => http('PUT', '/v1/accounts/me/devices', { body: { deviceList: b64uEncode(alice.client.identity.deviceList) } }));
  add('unknown route', 404, 'NOT_FOUND', () => http('GET', '/v1/messages/nope/nope'));
  add('ack ids that are not ids', 400, 'VALIDATION_FAILED', () => http('POST', '/v1/messages/ack', { body: { ids: ['x'] } }));
  add('fetch page above the limit', 400, 'VALIDATION_FAILED', () => http('GET', '/v1/messages?limit=100000'));
  add('socket without a token', 401, 'UNAUTHENTICATED', () => socketHandshake({}));
  add('socket with a forged token', 401, 'TOKEN_INVALID', () => socketHandshake({ token: `umb1.${randomBytes(32).toString('base64url')}` }));
  add('socket send that is not an object', 400, 'VALIDATION_FAILED', () => socketCall('send', 'hello'));
  add('socket send with bad base64', 400, 'BAD_ENCODING', () => socketCall('send', { ...valid(), recipients: [{ ...toDevice(bob), content: '@@@' }] }));
  add('socket send with an oversized envelope', 400, 'ENVELOPE_TOO_LARGE', () => socketCall('send', { ...valid(), recipients: [toDevice(bob, randomContent(LIMITS.MAX_ENVELOPE_CONTENT_BYTES + 1))] }));
  add('socket send with urgent that is not a boolean', 400, 'VALIDATION_FAILED', () => socketCall('send', { ...valid(), urgent: 1 }));
  add('socket ack with garbage', 400, 'VALIDATION_FAILED', () => socketCall('ack', { ids: [{}] }));

  beforeAll(async () => {
    stack = await TestStack.start();
    db = new DataSource({ type: 'postgres', url: TEST_DATABASE_URL });
    await db.initialize();
    alice = await registeredClient(stack.origin);
    bob = await registeredClient(stack.origin);
    token = await alice.client.getToken();
  });

  afterAll(async () => {
    await alice.client.close();
    await bob.client.close();
    await stack.stop();
    await db.destroy();
  });

  it(`has at least 25 distinct cases`, () => {
    expect(cases.length).toBeGreaterThanOrEqual(25);
  });

  it('answers every case with its 4xx and code, without changing stored data or crashing', async () => {
    const outcomes: { name: string; status: number; code: string }[] = [];
    for (const c of cases) {
      const before = await snapshot();
      const got = await c.run();
      outcomes.push({ name: c.name, ...got });
      expect({ name: c.name, ...got }).toEqual({ name: c.name, status: c.status, code: c.code });
      if (!['replayed challenge', 'expired token'].includes(c.name)) expect(await snapshot()).toEqual(before);
    }
    expect(outcomes.every((o) => o.status >= 400 && o.status < 500)).toBe(true);
    for (const inst of stack.instances) expect((await fetch(`${inst.svc.url}/readyz`)).status).toBe(200);
    expect(stack.logs.text()).not.toContain('unhandled error');
    // Still serving: a good send goes through.
    const ok = await http('POST', '/v1/messages', { body: valid() });
    expect(ok.status).toBe(200);
  });

  it('survives a socket frame above the size limit', async () => {
    const s: Socket = io(stack.origin, { path: WS_PATH, transports: ['websocket'], auth: { token }, reconnection: false });
    await new Promise<void>((r) => s.on('connect', () => r()));
    s.emit('send', { blob: 'x'.repeat(12 * 1024 * 1024) });
    await new Promise((r) => setTimeout(r, 1000));
    expect((await fetch(`${stack.of('gateway')[0]!.svc.url}/readyz`)).status).toBe(200);
    expect(await socketCall('ack', { ids: ['1'] })).toEqual({ status: 200, code: '' });
    s.disconnect();
  });
});

import { randomBytes } from 'node:crypto';
import { DataSource } from 'typeorm';
import { b64uEncode } from '@umbra/crypto';
import { ROUTES, type RouteDef, type RouteId } from '@umbra/protocol';
import { TestStack, TEST_DATABASE_URL, waitFor } from './support/harness';
import { registeredClient, toDevice, type TestClient } from './support/clients';
import { snapshotAccounts } from './hostile/state';

/**
 * The authorisation matrix: for every authenticated route (enumerated from ROUTES, so a new route
 * without a case fails here), a second account (mallory) aims at the first account's (alice's)
 * resources. Each case says what the route's design allows:
 * - denied: mallory gets the given 4xx code (403/404/409 on alice's resources; 400 where alice's signed object
 *   fails verification under mallory's keys, or a spoofed field is refused by the schema);
 * - scoped: the route only ever acts on the caller's own rows, so mallory gets 2xx with her own data and none of alice's;
 * - public: the route serves public directory data by design (device lists, handles, prekey bundles).
 * Afterwards alice's stored rows are what they were. Separately, every auth route without a token is 401.
 */
type AuthRouteId = { [K in RouteId]: (typeof ROUTES)[K] extends { auth: true } ? K : never }[RouteId];
type Reply = { status: number; json: Record<string, unknown> & { error?: { code?: string } } };
type Case =
  | { kind: 'denied'; status: number; code: string; run: () => Promise<Reply>; after?: () => Promise<void> }
  | { kind: 'scoped' | 'public'; status: number; run: () => Promise<Reply>; check: (json: Record<string, unknown>) => void | Promise<void> };

describe('authorisation matrix: a second account on the first account\'s resources', () => {
  let stack: TestStack;
  let db: DataSource;
  let alice: TestClient;
  let mallory: TestClient;
  let bob: TestClient;
  let aliceToken: string;
  let malloryToken: string;
  let envelopeId: string;
  let attachmentId: string;
  const channel = randomBytes(32).toString('base64url');
  let before: Record<string, unknown>;
  let aliceLongTermKeys: unknown;

  async function req(method: string, path: string, token: string | null, body?: unknown): Promise<Reply> {
    const headers: Record<string, string> = {};
    if (token !== null) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${stack.origin}${path}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    const text = await res.text();
    return { status: res.status, json: text ? (JSON.parse(text) as Reply['json']) : {} };
  }

  const aliceRows = async () => {
    const snap = await snapshotAccounts(db, [alice.client.identity.accountId]);
    // Handing out one-time prekeys is what a bundle fetch is for; the long-term keys are compared on their own.
    return { ...snap, prekeys: undefined };
  };
  const longTermKeys = () =>
    db.query(`SELECT kind, key_id::text, md5(record) FROM prekeys WHERE account_id = $1 AND kind IN (1, 4) ORDER BY kind, key_id`, [Buffer.from(alice.client.identity.accountId)]);

  beforeAll(async () => {
    stack = await TestStack.start({ withS3: true, withTurn: true });
    db = new DataSource({ type: 'postgres', url: TEST_DATABASE_URL });
    await db.initialize();
    alice = await registeredClient(stack.origin);
    mallory = await registeredClient(stack.origin);
    bob = await registeredClient(stack.origin);
    await alice.client.refillPrekeys();
    await alice.client.claimHandle(`alice_${randomBytes(4).toString('hex')}`);
    aliceToken = await alice.client.getToken();
    malloryToken = await mallory.client.getToken();

    const sent = await req('POST', '/v1/messages', await bob.client.getToken(), { clientMessageId: randomBytes(16).toString('base64url'), recipients: [toDevice(alice)] });
    expect(sent.status).toBe(200);
    const rows = (await db.query('SELECT seq::text AS id FROM envelopes WHERE recipient_account = $1', [Buffer.from(alice.client.identity.accountId)])) as { id: string }[];
    envelopeId = rows[0]!.id;

    const att = await req('POST', '/v1/attachments', aliceToken, { size: 1000 });
    expect(att.status).toBe(201);
    attachmentId = att.json.id as string;

    expect((await req('PUT', `/v1/provisioning/${channel}/message`, aliceToken, { message: randomBytes(200).toString('base64url') })).status).toBe(204);
    expect((await req('PUT', `/v1/provisioning/${channel}/reply`, null, { reply: randomBytes(65).toString('base64url') })).status).toBe(204);

    before = await aliceRows();
    aliceLongTermKeys = await longTermKeys();
  });

  afterAll(async () => {
    for (const c of [alice, mallory, bob]) await c?.client.close();
    await stack?.stop();
    await db?.destroy();
  });

  const aliceId = () => alice.client.identity.accountIdText;
  const noAliceData = (json: unknown) => {
    const text = JSON.stringify(json);
    expect(text).not.toContain(envelopeId === undefined ? '\u0000' : `"${envelopeId}"`);
    expect(text).not.toContain(aliceId());
    expect(text).not.toContain(attachmentId);
  };

  const CASES: Record<AuthRouteId, Case> = {
    sendMessage: {
      kind: 'denied', status: 400, code: 'VALIDATION_FAILED',
      // The sender is the token's device; a body naming another sender is refused, not honoured.
      run: () => req('POST', '/v1/messages', malloryToken, { clientMessageId: randomBytes(16).toString('base64url'), recipients: [toDevice(bob)], senderAccountId: aliceId() }),
    },
    fetchMessages: { kind: 'scoped', status: 200, run: () => req('GET', '/v1/messages?limit=500', malloryToken), check: (json) => noAliceData(json) },
    ackMessages: {
      // Acks are deleted by a batched job scoped to the caller's device; `acked` counts the ids taken. Mallory acks one
      // envelope of her own with alice's: once hers is gone the job has run, and alice's must still be there.
      kind: 'scoped', status: 200,
      run: async () => {
        await req('POST', '/v1/messages', await bob.client.getToken(), { clientMessageId: randomBytes(16).toString('base64url'), recipients: [toDevice(mallory)] });
        const own = ((await req('GET', '/v1/messages', malloryToken)).json.messages as { id: string }[])[0]!.id;
        const res = await req('POST', '/v1/messages/ack', malloryToken, { ids: [own, envelopeId] });
        await waitFor(async () => ((await req('GET', '/v1/messages', malloryToken)).json.messages as unknown[]).length === 0, 10_000, "mallory's own ack");
        return res;
      },
      check: (json) => expect(json).toEqual({ acked: 2 }),
    },
    readMessages: { kind: 'scoped', status: 200, run: () => req('POST', '/v1/messages/read', malloryToken, { ids: [envelopeId] }), check: (json) => expect(json).toEqual({ lowered: 0 }) },
    recallMessage: {
      // Recall is keyed by the token's device: naming the clientMessageId of bob's envelope to alice, and alice's account, recalls nothing.
      kind: 'scoped', status: 200,
      run: async () => {
        const [row] = (await db.query('SELECT client_message_id FROM envelopes WHERE seq = $1', [envelopeId])) as { client_message_id: Buffer }[];
        return req('POST', '/v1/messages/recall', malloryToken, { clientMessageId: row!.client_message_id.toString('base64url'), accountIds: [aliceId()] });
      },
      check: (json) => expect(json).toEqual({ recalled: 0 }),
    },
    callRelays: {
      // TURN credentials are the caller's own: nothing in them names alice (or mallory).
      kind: 'scoped', status: 200, run: () => req('GET', '/v1/calls/relays', malloryToken),
      check: (json) => {
        noAliceData(json);
        expect(json.username).toMatch(/^\d+:[A-Za-z0-9_-]{22}$/);
      },
    },
    getAccount: {
      kind: 'public', status: 200, run: () => req('GET', `/v1/accounts/${aliceId()}`, malloryToken),
      check: (json) => expect(Object.keys(json).sort()).toEqual(['accountId', 'deviceList', 'devices', 'handle', 'handleClaim', 'listVersion']),
    },
    getAccountByHandle: {
      kind: 'public', status: 200,
      run: async () => req('GET', `/v1/accounts/by-handle/${(await req('GET', `/v1/accounts/${aliceId()}`, aliceToken)).json.handle as string}`, malloryToken),
      check: (json) => expect(Object.keys(json).sort()).toEqual(['accountId', 'deviceList', 'devices', 'handle', 'handleClaim', 'listVersion']),
    },
    updateDevices: { kind: 'denied', status: 403, code: 'FORBIDDEN', run: () => req('PUT', '/v1/accounts/me/devices', malloryToken, { deviceList: b64uEncode(alice.client.identity.deviceList) }) },
    claimHandle: {
      // Alice's own signed claim, replayed by mallory: it does not verify under mallory's account key.
      kind: 'denied', status: 400, code: 'BAD_SIGNATURE',
      run: async () => {
        const claim = (await req('GET', `/v1/accounts/${aliceId()}`, aliceToken)).json.handleClaim as string;
        return req('PUT', '/v1/accounts/me/handle', malloryToken, { claim });
      },
    },
    releaseHandle: { kind: 'denied', status: 404, code: 'HANDLE_NOT_FOUND', run: () => req('DELETE', '/v1/accounts/me/handle', malloryToken) },
    uploadKeys: {
      // Alice's signed prekey record, uploaded as mallory's: its signature is not by mallory's device key.
      kind: 'denied', status: 400, code: 'BAD_SIGNATURE',
      run: async () => {
        const [spk] = (await db.query('SELECT record FROM prekeys WHERE account_id = $1 AND kind = 1', [Buffer.from(alice.client.identity.accountId)])) as { record: Buffer }[];
        return req('PUT', '/v1/keys', malloryToken, { signedPreKey: spk!.record.toString('base64url') });
      },
    },
    keyCounts: {
      kind: 'scoped', status: 200, run: () => req('GET', '/v1/keys/me', malloryToken),
      check: (json) => expect(json).toEqual({ oneTimePreKeys: 0, oneTimeKemPreKeys: 0, signedPreKey: false, lastResortKemPreKey: false }),
    },
    getBundles: {
      kind: 'public', status: 200, run: () => req('GET', `/v1/keys/${aliceId()}`, malloryToken),
      check: (json) => expect(Object.keys(json).sort()).toEqual(['accountId', 'bundles', 'listVersion', 'withoutKeys']),
    },
    putProvisioningMessage: { kind: 'denied', status: 409, code: 'PROVISIONING_CHANNEL_TAKEN', run: () => req('PUT', `/v1/provisioning/${channel}/message`, malloryToken, { message: randomBytes(200).toString('base64url') }) },
    getLinkReply: { kind: 'denied', status: 404, code: 'NOT_FOUND', run: () => req('GET', `/v1/provisioning/${channel}/reply`, malloryToken) },
    createAttachment: {
      kind: 'scoped', status: 201, run: () => req('POST', '/v1/attachments', malloryToken, { size: 1000 }),
      check: async (json) => {
        const [row] = (await db.query('SELECT account_id FROM attachments WHERE id = $1', [Buffer.from(json.id as string, 'base64url')])) as { account_id: Buffer }[];
        expect(row!.account_id.equals(Buffer.from(mallory.client.identity.accountId))).toBe(true);
      },
    },
    attachmentParts: { kind: 'denied', status: 403, code: 'NOT_UPLOADER', run: () => req('GET', `/v1/attachments/${attachmentId}/parts`, malloryToken) },
    completeAttachment: { kind: 'denied', status: 403, code: 'NOT_UPLOADER', run: () => req('POST', `/v1/attachments/${attachmentId}/complete`, malloryToken) },
    deleteAttachment: { kind: 'denied', status: 403, code: 'NOT_UPLOADER', run: () => req('DELETE', `/v1/attachments/${attachmentId}`, malloryToken) },
    // Downloads are capabilities: any account that knows a completed attachment's id may fetch it (PROTOCOL.md §9); an unfinished one is nobody's to read.
    getAttachment: { kind: 'denied', status: 409, code: 'ATTACHMENT_NOT_READY', run: () => req('GET', `/v1/attachments/${attachmentId}`, malloryToken) },
  };

  const authRoutes = (Object.entries(ROUTES) as [RouteId, RouteDef][]).filter(([, r]) => r.auth).map(([id]) => id);

  it('has a case for every authenticated route', () => {
    expect(authRoutes.length).toBeGreaterThan(0);
    expect(Object.keys(CASES).sort()).toEqual([...authRoutes].sort());
  });

  it.each(authRoutes)('%s: a second account cannot reach the first account\'s resources', async (id) => {
    const c = CASES[id as AuthRouteId];
    const res = await c.run();
    if (c.kind === 'denied') {
      expect({ status: res.status, code: res.json.error?.code }).toEqual({ status: c.status, code: c.code });
      noAliceData(res.json);
    } else {
      expect(res.status).toBe(c.status);
      await c.check(res.json);
    }
    expect(await aliceRows()).toEqual(before);
    expect(await longTermKeys()).toEqual(aliceLongTermKeys);
  });

  it.each(authRoutes)('%s: without a token is 401 UNAUTHENTICATED, with a forged one 401 TOKEN_INVALID', async (id) => {
    const route = ROUTES[id] as RouteDef;
    const path = route.path
      .replace('{accountId}', aliceId())
      .replace('{handle}', 'alice')
      .replace('{channel}', channel)
      .replace('{id}', attachmentId);
    const body = route.body ? {} : undefined;
    const none = await req(route.method.toUpperCase(), path, null, body);
    expect({ status: none.status, code: none.json.error?.code }).toEqual({ status: 401, code: 'UNAUTHENTICATED' });
    const forged = await req(route.method.toUpperCase(), path, `umb1.${randomBytes(32).toString('base64url')}`, body);
    expect({ status: forged.status, code: forged.json.error?.code }).toEqual({ status: 401, code: 'TOKEN_INVALID' });
    expect(await aliceRows()).toEqual(before);
  });

  it('left alice able to use all of it', async () => {
    expect((await req('GET', `/v1/attachments/${attachmentId}/parts`, aliceToken)).status).toBe(200);
    expect((await req('GET', `/v1/provisioning/${channel}/reply`, aliceToken)).status).toBe(200);
    const page = await req('GET', '/v1/messages', aliceToken);
    expect((page.json.messages as { id: string }[]).map((m) => m.id)).toEqual([envelopeId]);
  });
});

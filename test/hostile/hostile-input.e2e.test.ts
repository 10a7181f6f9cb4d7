import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { io, type Socket } from 'socket.io-client';
import { DataSource } from 'typeorm';
import { b64uEncode, encodeAccountId } from '@umbra/crypto';
import { ClientEvent, ERROR_CODES, ERROR_STATUS, LIMITS, ROUTES, WS_EVENTS, WS_PATH, type ErrorCode, type RouteDef, type RouteId } from '@umbra/protocol';
import { TestStack, TEST_DATABASE_URL } from '../support/harness';
import { registeredClient, toDevice, type TestClient } from '../support/clients';
import { rawRequest, type RawResponse } from '../support/raw-http';
import { allEdgeQueries, contentType, edgeBody, edgeQuery, hostileJson, mutated, pathSegment, queryString, rawBody } from './arbitraries';
import { snapshotAccounts } from './state';

/**
 * Property-based hostile input over every REST route (from ROUTES) and every client → server socket
 * event (from WS_EVENTS), against one real stack. Each case must get a 4xx with a stable code (or a
 * harmless success), never a 5xx, never a crash, and the test accounts' stored rows must not change.
 * A failure prints fast-check's seed and counterexample; UMBRA_HOSTILE_SEED replays a seed.
 */
const SEED = Number(process.env.UMBRA_HOSTILE_SEED ?? 0x0b5e55ed);
const RUNS = Number(process.env.UMBRA_HOSTILE_RUNS ?? 200);
const HIGH = '1000000';

const b64 = (n: number) => randomBytes(n).toString('base64url');
/** Longest path and query generated: Node's HTTP parser answers a request head over 16 KiB itself (see the test.failing below). */
const MAX_URL_CHARS = 8000;

/** fc.assert, with a failure message that stays readable: seed, path, the cause, and each counterexample cut to 300 characters. */
async function assertProperty<T>(prop: fc.IAsyncPropertyWithHooks<T>, params: fc.Parameters<T>): Promise<void> {
  const out = await fc.check(prop, params);
  if (!out.failed) return;
  const cut = (v: unknown) => (JSON.stringify(v, (_k, x) => (typeof x === 'string' && x.length > 300 ? `${x.slice(0, 300)}…(${x.length} chars)` : x)) ?? String(v)).slice(0, 2000);
  const cause = out.errorInstance instanceof Error ? out.errorInstance.message : out.counterexample === null ? `no counterexample: ${out.numSkips} cases skipped, interrupted: ${out.interrupted}` : String(out.errorInstance);
  throw new Error(`property failed (seed ${out.seed}, path "${out.counterexamplePath}", replay with UMBRA_HOSTILE_SEED=${out.seed}): ${cause}\ncounterexample: ${cut(out.counterexample)}`);
}
const FIELD_NAMES = [
  'authResponse', 'clientMessageId', 'recipients', 'accountId', 'deviceId', 'type', 'content', 'expiresAt', 'readTtlS', 'attachments', 'ids',
  'deviceList', 'pow', 'challenge', 'solution', 'claim', 'signedPreKey', 'lastResortKemPreKey', 'oneTimePreKeys', 'oneTimeKemPreKeys', 'message', 'reply', 'size',
];

/** Whether any string anywhere in a JSON text (or value) is exactly `id`. */
function mentions(value: unknown, id: string): boolean {
  if (typeof value === 'string') {
    if (value === id) return true;
    try {
      const parsed: unknown = JSON.parse(value);
      return typeof parsed === 'object' && parsed !== null && mentions(parsed, id);
    } catch {
      return false;
    }
  }
  if (Array.isArray(value)) return value.some((v) => mentions(v, id));
  if (value && typeof value === 'object') return Object.values(value).some((v) => mentions(v, id));
  return false;
}

interface HostileRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

describe('hostile input: every REST route and socket event, generated cases against a real stack', () => {
  let stack: TestStack;
  let db: DataSource;
  let alice: TestClient;
  let bob: TestClient;
  let token: string;
  let envelopeId: string;
  let before: Record<string, unknown>;
  const codesSeen = new Map<string, Map<string, number>>();

  const snapshot = () => snapshotAccounts(db, [alice.client.identity.accountId, bob.client.identity.accountId]);

  beforeAll(async () => {
    stack = await TestStack.start({
      withS3: true,
      env: {
        // Limits high enough that generated cases reach validation instead of stopping at a 429; quota 0 so no generated size can create an attachment.
        RATE_LIMIT_REGISTER_PER_IP_PER_HOUR: HIGH, RATE_LIMIT_CHALLENGE_PER_IP_PER_MINUTE: HIGH, RATE_LIMIT_TOKEN_PER_DEVICE_PER_MINUTE: HIGH,
        RATE_LIMIT_SEND_PER_DEVICE_PER_SECOND: HIGH, RATE_LIMIT_LOOKUP_PER_ACCOUNT_PER_MINUTE: HIGH, RATE_LIMIT_ACCOUNT_CHANGES_PER_HOUR: HIGH,
        RATE_LIMIT_BUNDLE_FETCH_PER_ACCOUNT_PER_HOUR: HIGH, ATTACHMENT_QUOTA_BYTES_PER_DAY: '0', LOG_LEVEL: 'warn',
      },
    });
    db = new DataSource({ type: 'postgres', url: TEST_DATABASE_URL });
    await db.initialize();
    alice = await registeredClient(stack.origin);
    bob = await registeredClient(stack.origin);
    await alice.client.refillPrekeys();
    token = await alice.client.getToken();
    // One envelope waiting in alice's queue, so a fuzzed ack or read that wrongly touched it would show.
    const sent = await fetch(`${stack.origin}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await bob.client.getToken()}` },
      body: JSON.stringify({ clientMessageId: b64(16), recipients: [toDevice(alice)] }),
    });
    expect(sent.status).toBe(200);
    const rows = (await db.query('SELECT seq::text AS id FROM envelopes WHERE recipient_account = $1', [Buffer.from(alice.client.identity.accountId)])) as { id: string }[];
    expect(rows).toHaveLength(1);
    envelopeId = rows[0]!.id;
    before = await snapshot();
  });

  afterAll(async () => {
    const summary = [...codesSeen].map(([surface, codes]) => `${surface}: ${[...codes].map(([c, n]) => `${c}×${n}`).join(' ')}`).join('\n');
    process.stdout.write(`hostile input, seed ${SEED}, ${RUNS} runs per surface\n${summary}\n`);
    await alice?.client.close();
    await bob?.client.close();
    await stack?.stop();
    await db?.destroy();
  });

  function count(surface: string, code: string): void {
    const m = codesSeen.get(surface) ?? new Map<string, number>();
    m.set(code, (m.get(code) ?? 0) + 1);
    codesSeen.set(surface, m);
  }

  /** Valid-looking bodies for each route, each kept harmless (wrong device set, unknown ids, quota 0, foreign device list). */
  function template(id: RouteId): Record<string, unknown> | undefined {
    const bobDevice = bob.client.identity.device.deviceId;
    switch (id) {
      case 'authToken': return { authResponse: b64(120) };
      case 'sendMessage': return { clientMessageId: b64(16), recipients: [{ ...toDevice(bob, 'AAAA'), deviceId: bobDevice === 1 ? 2 : bobDevice - 1 }], expiresAt: 0, readTtlS: 0, attachments: [] };
      case 'ackMessages': case 'readMessages': return { ids: [LIMITS.MAX_ENVELOPE_ID] };
      case 'register': return { deviceList: b64(300), authResponse: b64(150), pow: { challenge: b64(32), solution: b64(8) } };
      case 'updateDevices': return { deviceList: b64uEncode(bob.client.identity.deviceList) };
      case 'claimHandle': return { claim: b64(148) };
      case 'uploadKeys': return { signedPreKey: b64(148), lastResortKemPreKey: b64(1684), oneTimePreKeys: [b64(148)], oneTimeKemPreKeys: [] };
      case 'putProvisioningMessage': return { message: b64(100) };
      case 'putLinkReply': return { reply: b64(65) };
      case 'createAttachment': return { size: LIMITS.DEFAULT_ATTACHMENT_MAX_BYTES + 1, expiresAt: 0 };
      default: return undefined;
    }
  }

  function validParams(name: string): string[] {
    switch (name) {
      case 'accountId': return [bob.client.identity.accountIdText, encodeAccountId(randomBytes(32))];
      case 'handle': return ['nobody_here', 'abc'];
      case 'channel': return [b64(32), b64(32)];
      case 'id': return [b64(16), b64(16)];
      default: return ['x'];
    }
  }

  function queryKeysOf(route: RouteDef): string[] {
    return route.query ? Object.keys((route.query as unknown as { shape: Record<string, unknown> }).shape) : ['limit', 'after', 'deviceId'];
  }

  function requestArb(id: RouteId, route: RouteDef): fc.Arbitrary<HostileRequest> {
    const params = [...route.path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
    const pathArb = fc.tuple(...params.map((p) => pathSegment(validParams(p)))).map((segs) => {
      let i = 0;
      return route.path.replace(/\{[^}]+\}/g, () => segs[i++]!);
    });
    const queryKeys = queryKeysOf(route);
    const tpl = template(id);
    const jsonBody = fc.oneof(
      ...(tpl ? [{ arbitrary: mutated(tpl, FIELD_NAMES).map((v) => JSON.stringify(v)), weight: 4 }, { arbitrary: edgeBody(tpl), weight: 3 }] : []),
      { arbitrary: hostileJson(FIELD_NAMES).map((v) => JSON.stringify(v) ?? 'null'), weight: 2 },
      { arbitrary: rawBody, weight: 2 },
    );
    const body: fc.Arbitrary<string | undefined> = route.body ? jsonBody : fc.option(jsonBody, { freq: 8 }).map((b) => b ?? undefined);
    const auth = fc.oneof(
      { arbitrary: fc.constant(`Bearer ${token}`), weight: 12 },
      { arbitrary: fc.constantFrom('', 'Bearer', 'Bearer ', `bearer ${token}`, `Bearer ${token}x`, `Basic ${b64(12)}`, `Bearer umb1.${b64(32)}`, `Bearer ${'A'.repeat(5000)}`), weight: 1 },
    );
    return fc
      .record({ path: pathArb, query: fc.oneof({ arbitrary: queryString(queryKeys), weight: 3 }, { arbitrary: edgeQuery(queryKeys), weight: 1 }), body, type: contentType, auth })
      .filter(({ path, query }) => path.length + query.length <= MAX_URL_CHARS).map(({ path, query, body: b, type, auth: a }) => ({
      method: route.method.toUpperCase(),
      path: path + query,
      headers: { ...(a ? { authorization: a } : {}), ...(b !== undefined ? { 'content-type': type } : {}) },
      ...(b !== undefined ? { body: b } : {}),
    }));
  }

  function checkResponse(surface: string, route: RouteDef, res: RawResponse): void {
    if (res.status >= 500 || res.status < 200) throw new Error(`${res.status}: ${res.text.slice(0, 300)}`);
    if (res.status >= 400) {
      const err = res.json.error;
      if (!err || typeof err.message !== 'string' || !ERROR_CODES.includes(err.code as ErrorCode)) throw new Error(`no stable error body: ${res.status} ${res.text.slice(0, 300)}`);
      if (ERROR_STATUS[err.code as ErrorCode] !== res.status) throw new Error(`code ${err.code} with status ${res.status}`);
      count(surface, err.code!);
    } else {
      if (res.status !== route.status) throw new Error(`success with status ${res.status}, the route answers ${route.status}`);
      count(surface, String(res.status));
    }
  }

  const routeIds = Object.keys(ROUTES) as RouteId[];

  it('covers every route in ROUTES', () => {
    expect(routeIds.length).toBeGreaterThanOrEqual(24);
  });

  describe.each(routeIds)('%s', (id) => {
    it(`never answers 5xx, always a stable error code, and changes nothing stored (${RUNS} cases)`, async () => {
      const route = ROUTES[id] as RouteDef;
      // Exhaustive first: every query key of the route at every boundary number.
      if (route.query) {
        for (const q of allEdgeQueries(queryKeysOf(route))) {
          const path = route.path.replace(/\{[^}]+\}/g, (m) => encodeURIComponent(validParams(m.slice(1, -1))[0]!));
          const res = await rawRequest(stack.origin, route.method.toUpperCase(), path + q, { headers: { authorization: `Bearer ${token}` } });
          try {
            checkResponse(`${route.method.toUpperCase()} ${route.path}`, route, res);
          } catch (err) {
            throw new Error(`${route.method.toUpperCase()} ${path}${q}: ${(err as Error).message}`);
          }
        }
      }
      let ran = 0;
      await assertProperty(
        fc.asyncProperty(requestArb(id, route), async (req) => {
          // Never ack or read the one real envelope by accident (only a body can).
          fc.pre(!mentions(req.body ?? '', envelopeId));
          ran++;
          const res = await rawRequest(stack.origin, req.method, req.path, { headers: req.headers, ...(req.body !== undefined ? { body: req.body } : {}) });
          checkResponse(`${route.method.toUpperCase()} ${route.path}`, route, res);
        }),
        { seed: SEED, numRuns: RUNS, endOnFailure: true },
      );
      expect(ran).toBeGreaterThanOrEqual(RUNS);
      expect(await snapshot()).toEqual(before);
    });
  });

  // Found by this suite: Node's HTTP parser answered a request head over 16 KiB with a bare 431 and no JSON error body.
  it('a URL over the header limit still gets a stable error body', async () => {
    const res = await rawRequest(stack.origin, 'GET', `/v1/messages?after=${'1'.repeat(20_000)}`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(431);
    expect(res.json.error?.code).toBe('HEADERS_TOO_LARGE');
    // And a service reached without the edge (behind nginx or an Ingress) answers the same way.
    const gateway = stack.instances.find((i) => i.name === 'gateway')!;
    const direct = await rawRequest(gateway.svc.url, 'GET', `/v1/messages?after=${'1'.repeat(20_000)}`, { headers: { authorization: `Bearer ${token}` } });
    expect(direct.status).toBe(431);
    expect(direct.json.error?.code).toBe('HEADERS_TOO_LARGE');
  });

  describe('socket events', () => {
    let socket: Socket;
    let observer: Socket;
    const RESERVED = new Set(['connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener']);

    function connect(t: string): Promise<Socket> {
      return new Promise((resolve, reject) => {
        const s = io(stack.origin, { path: WS_PATH, transports: ['websocket'], auth: { token: t }, reconnection: false });
        s.once('connect', () => resolve(s));
        s.once('connect_error', reject);
      });
    }

    type Ack = { ok: boolean; error?: { code?: string; message?: string } };
    function call(s: Socket, event: string, ...args: unknown[]): Promise<Ack> {
      return s.timeout(3000).emitWithAck(event, ...args) as Promise<Ack>;
    }

    function checkAck(surface: string, ack: Ack): void {
      if (!ack || typeof ack.ok !== 'boolean') throw new Error(`not an acknowledgement: ${JSON.stringify(ack)?.slice(0, 200)}`);
      if (!ack.ok) {
        const code = ack.error?.code;
        if (!ERROR_CODES.includes(code as ErrorCode) || typeof ack.error?.message !== 'string') throw new Error(`no stable error code: ${JSON.stringify(ack).slice(0, 200)}`);
        if (code === 'INTERNAL' || code === 'UNAVAILABLE') throw new Error(`server error ${code}: ${ack.error?.message}`);
        count(surface, code!);
      } else count(surface, 'ok');
    }

    beforeAll(async () => {
      socket = await connect(token);
      observer = await connect(await bob.client.getToken());
    });

    afterAll(() => {
      socket?.disconnect();
      observer?.disconnect();
    });

    const clientEvents = WS_EVENTS.filter((e) => e.direction === 'client→server').map((e) => e.name);

    it('covers every client event', () => {
      expect(new Set(clientEvents)).toEqual(new Set(Object.values(ClientEvent)));
    });

    it.each(clientEvents)(`%s: acknowledged with a stable code, the socket survives (${RUNS} cases)`, async (event) => {
      const tpl = event === ClientEvent.Send ? template('sendMessage')! : template('ackMessages')!;
      const payload = fc.oneof(
        { arbitrary: mutated(tpl, FIELD_NAMES), weight: 4 },
        { arbitrary: edgeBody(tpl).map((t) => JSON.parse(t) as unknown), weight: 3 },
        { arbitrary: hostileJson(FIELD_NAMES), weight: 3 },
        { arbitrary: fc.constantFrom(undefined, null, 0, '', 'x', [], [tpl], () => undefined), weight: 1 },
      );
      let ran = 0;
      await assertProperty(
        fc.asyncProperty(payload, fc.constantFrom('ack', 'ack', 'ack', 'extra-args', 'no-ack'), async (p, mode) => {
          fc.pre(!mentions(p, envelopeId));
          ran++;
          const surface = `socket ${event}`;
          if (mode === 'ack') checkAck(surface, await call(socket, event, p));
          else {
            // Extra arguments are refused on the acknowledgement (tested below); the socket must live on.
            if (mode === 'extra-args') socket.emit(event, p, p, 'extra', () => undefined);
            else socket.emit(event, p);
            // Still answering: a harmless ack of an id nobody has.
            checkAck('socket liveness', await call(socket, ClientEvent.Ack, { ids: [LIMITS.MAX_ENVELOPE_ID] }));
          }
          if (!socket.connected) throw new Error('the socket was disconnected');
        }),
        { seed: SEED, numRuns: RUNS, endOnFailure: true },
      );
      expect(ran).toBeGreaterThanOrEqual(RUNS);
      expect(await snapshot()).toEqual(before);
    });

    it(`unknown events and odd argument shapes are ignored without a crash (${RUNS} cases)`, async () => {
      const name = fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('SEND', 'send ', 'messages', 'revoked', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'error'));
      await assertProperty(
        fc.asyncProperty(name, hostileJson(FIELD_NAMES), async (ev, p) => {
          fc.pre(!RESERVED.has(ev) && !(clientEvents as string[]).includes(ev));
          socket.emit(ev, p);
          checkAck('socket liveness', await call(socket, ClientEvent.Ack, { ids: [LIMITS.MAX_ENVELOPE_ID] }));
          if (!socket.connected) throw new Error('the socket was disconnected');
        }),
        { seed: SEED, numRuns: RUNS, endOnFailure: true },
      );
    });

    // Found by this suite: the gateway took the acknowledgement from the second argument only, so an event with
    // extra arguments was never answered (the client waited for its timeout).
    it('an event with extra arguments is still acknowledged with a code', async () => {
      const ack = await call(socket, ClientEvent.Ack, { ids: [LIMITS.MAX_ENVELOPE_ID] }, 'extra');
      expect(ack.ok).toBe(false);
      expect(ack.error?.code).toBe('VALIDATION_FAILED');
    });

    it('leaves other sockets and the stack serving', async () => {
      expect(socket.connected).toBe(true);
      expect(observer.connected).toBe(true);
      expect((await call(observer, ClientEvent.Ack, { ids: [LIMITS.MAX_ENVELOPE_ID] })).ok).toBe(true);
      for (const inst of stack.instances) expect((await fetch(`${inst.svc.url}/readyz`)).status).toBe(200);
      expect(stack.logs.text()).not.toMatch(/unhandled error/i);
      expect(await snapshot()).toEqual(before);
    });
  });
});

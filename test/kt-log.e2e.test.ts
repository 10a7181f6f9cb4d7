import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DataSource } from 'typeorm';
import {
  b64uDecode,
  b64uEncode,
  bytesEqual,
  createCosignature,
  createSignedDeviceList,
  encodeCosignature,
  generateSecretKey,
  hexEncode,
  ktHandleLabel,
  merkleLeafHash,
  parseConsistencyProof,
  parseKtLeaf,
  parseLookupResult,
  parseSth,
  pub,
  sha256,
  verifyConsistency,
  verifyInclusion,
  verifyLookupSignature,
  verifySth,
  verifySthLogSignature,
  type LookupResult,
} from '@umbra/crypto';
import { WITNESS_PATHS } from '@umbra/protocol';
import { KtSequencerService } from '../services/key-directory/src/kt/kt-sequencer.service';
import { appendLeaves, leafHash, rootOf } from '../services/key-directory/src/kt/kt-tree';
import { TestStack, waitFor } from './support/harness';
import { ClientPool } from './support/clients';

/**
 * The key-transparency log (PROTOCOL.md §12, issue 15) on a real stack: statements accepted by
 * key-directory become leaves, STHs are signed and cosigned by a witness (a small in-test witness
 * that checks consistency like umbra-witness does), lookups/monitor/leaves/consistency verify with
 * libs/crypto alone, bad input gets stable 4xx codes, and a restart plus a second instance continue
 * one tree. Each stack signs with its own random log key: the tree is shared by every test on the
 * database, the STH chain is per key.
 */

interface FakeWitness {
  url: string;
  pk: Uint8Array;
  state: { size: number; root: Uint8Array };
  cosigned: number;
  mismatches: number;
  refusals: number;
  close(): Promise<void>;
}

async function startFakeWitness(logPk: Uint8Array): Promise<FakeWitness> {
  const sk = generateSecretKey();
  const pk = pub(sk);
  const w: Omit<FakeWitness, 'url' | 'close'> = { pk, state: { size: 0, root: sha256(new Uint8Array(0)) }, cosigned: 0, mismatches: 0, refusals: 0 };
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const send = (status: number, json: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json));
      if (req.url !== WITNESS_PATHS.addSth) return send(404, {});
      const { sth: sthB64, oldSize, proof } = JSON.parse(body) as { sth: string; oldSize: number; proof: string };
      const sth = parseSth(b64uDecode(sthB64));
      if (!verifySthLogSignature(sth, logPk)) return send(403, { error: { code: 'FORBIDDEN' } });
      if (oldSize !== w.state.size) {
        w.mismatches++;
        return send(409, { error: { code: 'WITNESS_OLD_SIZE_MISMATCH', details: { treeSize: w.state.size } } });
      }
      const p = parseConsistencyProof(b64uDecode(proof));
      const ok =
        p.firstSize === oldSize && p.secondSize === sth.head.treeSize && (oldSize === 0 || verifyConsistency(oldSize, sth.head.treeSize, w.state.root, sth.head.root, p.path));
      if (!ok) {
        w.refusals++;
        return send(422, { error: { code: 'KT_FORK_DETECTED' } });
      }
      w.state = { size: sth.head.treeSize, root: sth.head.root };
      w.cosigned++;
      send(200, { cosignature: b64uEncode(encodeCosignature(createCosignature(sth.tbs, sk, pk, Date.now()))) });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return Object.assign(w, { url, close: () => new Promise<void>((r) => server.close(() => r())) }) as FakeWitness;
}

async function get(origin: string, path: string): Promise<{ status: number; body: Record<string, unknown>; ms: number }> {
  const t = performance.now();
  const res = await fetch(`${origin}${path}`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown>, ms: performance.now() - t };
}

const errorCode = (body: Record<string, unknown>) => (body.error as { code?: string } | undefined)?.code;

describe('key-transparency log (key-directory)', () => {
  const logSk = generateSecretKey();
  const logPk = pub(logSk);
  let witness: FakeWitness;
  let stack: TestStack;
  const pool = new ClientPool(() => stack.origin);
  const pins = () => ({ logPk, witnessPks: [witness.pk], minCosigners: 1 });

  /** Waits until the label's latest leaf is served, then checks it with libs/crypto only. */
  async function lookup(type: 1 | 2, label: Uint8Array, timeoutMs = 15_000): Promise<LookupResult> {
    let last: { status: number; body: Record<string, unknown> } | undefined;
    await waitFor(async () => (last = await get(stack.origin, `/v1/kt/lookup?type=${type}&label=${b64uEncode(label)}`)).status === 200, timeoutMs, 'the leaf in a cosigned STH');
    const res = parseLookupResult(b64uDecode(last!.body.result as string));
    verifySth(res.sth.bytes, pins(), Date.now());
    expect(verifyLookupSignature(res, logPk)).toBe(true);
    expect(verifyInclusion(merkleLeafHash(res.leafBytes), res.leafIndex, res.sth.head.treeSize, res.inclusion, res.sth.head.root)).toBe(true);
    expect(bytesEqual(res.leaf.label, label)).toBe(true);
    expect(bytesEqual(res.leaf.valueHash, sha256(res.statement))).toBe(true);
    return res;
  }

  beforeAll(async () => {
    witness = await startFakeWitness(logPk);
    stack = await TestStack.start({
      env: {
        KT_LOG_SIGNING_KEY: hexEncode(logSk),
        KT_WITNESSES: `${witness.url}|${hexEncode(witness.pk)}`,
        KT_WITNESS_QUORUM: '1',
        KT_SEQUENCE_INTERVAL_MS: '100',
        KT_STH_INTERVAL_MS: '300',
        KT_LOOKUP_FLOOR_MS: '60',
      },
    });
  }, 30_000);
  afterAll(async () => {
    await pool.closeAll();
    await stack.stop();
    await witness.close();
  });

  it('serves its trust config, and STHs signed by the log and cosigned by the witness, at least every KT_STH_INTERVAL_MS', async () => {
    const config = await get(stack.origin, '/v1/kt/config');
    expect(config.body).toEqual({ logPublicKey: hexEncode(logPk), witnesses: [{ publicKey: hexEncode(witness.pk) }], quorum: 1, mmdMs: 3_600_000, maxSthAgeMs: 86_400_000 });
    let first: ReturnType<typeof parseSth> | undefined;
    await waitFor(async () => (await get(stack.origin, '/v1/kt/sth')).status === 200, 10_000, 'a cosigned STH');
    first = verifySth(b64uDecode((await get(stack.origin, '/v1/kt/sth')).body.sth as string), pins(), Date.now());
    expect(first.cosignatures).toHaveLength(1);
    // A newer STH follows within the interval even if nobody else writes.
    await waitFor(async () => verifySth(b64uDecode((await get(stack.origin, '/v1/kt/sth')).body.sth as string), pins(), Date.now()).head.timestamp > first!.head.timestamp, 5000, 'a newer STH');
  });

  it('logs a registration, a handle claim and a new device list; lookups, monitor, leaves and consistency verify', async () => {
    const alice = await pool.registered();
    const id = alice.client.identity;
    const reg = await lookup(1, id.accountId);
    expect(reg.leaf.version).toBe(1);
    expect(bytesEqual(reg.statement, id.deviceList)).toBe(true);
    const sizeAfterRegistration = reg.sth.head.treeSize;

    const handle = `kt_${Date.now().toString(36)}`;
    await alice.client.claimHandle(handle);
    const account = await alice.client.api<{ handleClaim: string }>('GET', `/v1/accounts/${id.accountIdText}`);
    const bound = await lookup(2, ktHandleLabel(handle));
    expect(b64uEncode(bound.statement)).toBe(account.handleClaim);
    expect(bound.leafIndex).toBeGreaterThan(reg.leafIndex);

    // Consistency between the two STHs the lookups were proved under.
    const older = reg.sth.head;
    const newer = bound.sth.head;
    const cons = await get(stack.origin, `/v1/kt/consistency?first=${older.treeSize}&second=${newer.treeSize}`);
    expect(cons.status).toBe(200);
    const proof = parseConsistencyProof(b64uDecode(cons.body.proof as string));
    expect(verifyConsistency(older.treeSize, newer.treeSize, older.root, newer.root, proof.path)).toBe(true);
    expect(newer.treeSize).toBeGreaterThanOrEqual(sizeAfterRegistration);

    // A new device list (version 2, the same device) is logged too, and becomes the label's latest leaf.
    const v2 = createSignedDeviceList({ aik: id.aik, listVersion: 2, issuedAt: Date.now(), certificates: [id.device.certificate] }, id.aikSk!);
    await alice.client.publishDeviceList(v2, 2);
    let latest = await lookup(1, id.accountId);
    await waitFor(async () => (latest = await lookup(1, id.accountId)).leaf.version === 2, 15_000, 'list version 2 in the log');
    expect(bytesEqual(latest.statement, v2)).toBe(true);

    // Monitor: every leaf of the account's label from index 0, all under one STH.
    const mon = await get(stack.origin, `/v1/kt/monitor?type=1&label=${b64uEncode(id.accountId)}&since=0`);
    expect(mon.status).toBe(200);
    const results = (mon.body.results as string[]).map((r) => parseLookupResult(b64uDecode(r)));
    expect(results.map((r) => r.leaf.version)).toEqual([1, 2]);
    for (const r of results) {
      expect(bytesEqual(r.sth.bytes, b64uDecode(mon.body.sth as string))).toBe(true);
      expect(verifyInclusion(merkleLeafHash(r.leafBytes), r.leafIndex, r.sth.head.treeSize, r.inclusion, r.sth.head.root)).toBe(true);
    }
    const after = await get(stack.origin, `/v1/kt/monitor?type=1&label=${b64uEncode(id.accountId)}&since=${reg.leafIndex + 1}`);
    expect((after.body.results as string[]).map((r) => parseLookupResult(b64uDecode(r)).leaf.version)).toEqual([2]);
    const none = await get(stack.origin, `/v1/kt/monitor?type=1&label=${b64uEncode(id.accountId)}&since=${latest.leafIndex + 1}`);
    expect(none.body.results).toEqual([]);

    // Raw leaves for independent monitors.
    const page = await get(stack.origin, `/v1/kt/leaves?start=${reg.leafIndex}&limit=1`);
    const leaves = page.body.leaves as { index: number; leaf: string; statement: string }[];
    expect(leaves).toHaveLength(1);
    expect(leaves[0]!.index).toBe(reg.leafIndex);
    expect(bytesEqual(b64uDecode(leaves[0]!.leaf), reg.leafBytes)).toBe(true);
    expect(parseKtLeaf(b64uDecode(leaves[0]!.leaf)).type).toBe(1);
    expect(page.body.treeSize as number).toBeGreaterThan(reg.leafIndex);
    expect(witness.cosigned).toBeGreaterThan(1);
  }, 40_000);

  it('re-proves from the size a witness names in a 409, and serves only cosigned STHs', async () => {
    const before = witness.mismatches;
    // The witness "restarts" with state from an older log view: its size no longer matches the log's memory.
    witness.state = { size: 0, root: sha256(new Uint8Array(0)) };
    const cosignedBefore = witness.cosigned;
    await waitFor(() => witness.cosigned > cosignedBefore, 10_000, 'a cosignature after the mismatch');
    expect(witness.mismatches).toBeGreaterThan(before);
    expect(witness.refusals).toBe(0);
    const sth = verifySth(b64uDecode((await get(stack.origin, '/v1/kt/sth')).body.sth as string), pins(), Date.now());
    expect(sth.cosignatures.length).toBe(1);
  }, 20_000);

  it('answers bad input with stable 4xx codes, and a label with no leaf with 404 after the same floor', async () => {
    const label = b64uEncode(new Uint8Array(32).fill(7));
    const cases: [string, number, string][] = [
      [`/v1/kt/lookup?type=3&label=${label}`, 400, 'VALIDATION_FAILED'],
      [`/v1/kt/lookup?type=1&label=${b64uEncode(new Uint8Array(31))}`, 400, 'VALIDATION_FAILED'],
      [`/v1/kt/lookup?type=1&label=${label.slice(0, 42)}%2B`, 400, 'BAD_ENCODING'],
      [`/v1/kt/lookup?type=1`, 400, 'VALIDATION_FAILED'],
      [`/v1/kt/lookup?type=1&label=${label}&extra=1`, 400, 'VALIDATION_FAILED'],
      ['/v1/kt/consistency?first=0&second=1', 400, 'VALIDATION_FAILED'],
      ['/v1/kt/consistency?first=5&second=4', 400, 'VALIDATION_FAILED'],
      [`/v1/kt/consistency?first=1&second=${Number.MAX_SAFE_INTEGER}`, 400, 'VALIDATION_FAILED'],
      ['/v1/kt/consistency?first=x&second=4', 400, 'VALIDATION_FAILED'],
      ['/v1/kt/leaves?start=0&limit=1001', 400, 'VALIDATION_FAILED'],
      ['/v1/kt/leaves?start=-1', 400, 'VALIDATION_FAILED'],
      [`/v1/kt/monitor?type=1&label=${label}&since=-1`, 400, 'VALIDATION_FAILED'],
    ];
    for (const [path, status, code] of cases) {
      const res = await get(stack.origin, path);
      expect(`${path} → ${res.status} ${errorCode(res.body)}`).toBe(`${path} → ${status} ${code}`);
    }
    const missing = await get(stack.origin, `/v1/kt/lookup?type=1&label=${label}`);
    expect(missing.status).toBe(404);
    expect(errorCode(missing.body)).toBe('KT_LABEL_NOT_FOUND');
    expect(missing.ms).toBeGreaterThanOrEqual(55);
  });
});

describe('key-transparency log: restart and two instances continue one tree', () => {
  const logSk = generateSecretKey();
  const logPk = pub(logSk);
  let stack: TestStack;
  const pool = new ClientPool(() => stack.origin);

  beforeAll(async () => {
    stack = await TestStack.start({
      instances: { 'key-directory': 2 },
      env: { KT_LOG_SIGNING_KEY: hexEncode(logSk), KT_SEQUENCE_INTERVAL_MS: '50', KT_STH_INTERVAL_MS: '500', RATE_LIMIT_KT_LOOKUP_PER_IP_PER_MINUTE: '200' },
    });
  }, 30_000);
  afterAll(async () => {
    await pool.closeAll();
    await stack.stop();
  });

  it('loses no statement and forks nothing while instances sequence concurrently, stop and start', async () => {
    const accounts: Uint8Array[] = [];
    const lists: Uint8Array[] = [];
    const register = async (n: number) => {
      const made = await Promise.all(Array.from({ length: n }, () => pool.registered()));
      for (const c of made) {
        accounts.push(c.client.identity.accountId);
        lists.push(c.client.identity.deviceList);
      }
    };
    const kd = () => stack.of('key-directory');
    // Both instances race for the sequencer lock, by their timers and by direct calls.
    const racing = Promise.all(kd().flatMap((i) => Array.from({ length: 10 }, () => i.svc.app.get(KtSequencerService).tick())));
    await register(6);
    await racing;
    // Stop one instance (a restart), write, start a new one, write again.
    await stack.stopInstance(kd()[0]!);
    await register(4);
    await stack.startInstance('key-directory', `key-directory-3-kt`);
    await register(4);
    expect(kd()).toHaveLength(2);

    const ds = kd()[0]!.svc.app.get(DataSource);
    const logId = sha256(logPk);
    // Every statement becomes exactly one leaf.
    await waitFor(
      async () => {
        const rows: { n: string }[] = await ds.query(`SELECT count(*) AS n FROM kt_leaves WHERE type = 1 AND label = ANY($1::bytea[])`, [accounts.map((a) => Buffer.from(a))]);
        return Number(rows[0]!.n) === accounts.length;
      },
      15_000,
      'every registration in the log',
    );
    for (let i = 0; i < accounts.length; i++) {
      const rows: { statement: Buffer; version: string }[] = await ds.query(`SELECT statement, version FROM kt_leaves WHERE type = 1 AND label = $1`, [Buffer.from(accounts[i]!)]);
      expect(rows).toHaveLength(1);
      expect(bytesEqual(rows[0]!.statement, lists[i]!)).toBe(true);
      expect(Number(rows[0]!.version)).toBe(1);
    }

    // No fork: leaves are dense, and every STH this log key signed has the root of the stored leaves at its size.
    const sths: { sth: Buffer }[] = await ds.query(`SELECT sth FROM kt_sths WHERE log_id = $1 ORDER BY id`, [Buffer.from(logId)]);
    expect(sths.length).toBeGreaterThan(1);
    const heads = sths.map((s) => parseSth(s.sth));
    for (const h of heads) expect(verifySthLogSignature(h, logPk)).toBe(true);
    const maxSize = Math.max(...heads.map((h) => h.head.treeSize));
    const leafRows: { i: string; leaf: Buffer }[] = await ds.query(`SELECT idx::text AS i, leaf FROM kt_leaves WHERE idx < $1 ORDER BY idx`, [maxSize]);
    expect(leafRows.length).toBe(maxSize);
    leafRows.forEach((r, i) => expect(Number(r.i)).toBe(i));
    const bySize = new Map<number, string>();
    let frontier: Buffer[] = [];
    let size = 0;
    const wanted = new Set(heads.map((h) => h.head.treeSize));
    for (const row of leafRows) {
      const out = appendLeaves(size, frontier, [leafHash(row.leaf)]);
      frontier = out.frontier;
      size = out.size;
      if (wanted.has(size)) bySize.set(size, rootOf(frontier).toString('hex'));
    }
    for (const h of heads) {
      if (h.head.treeSize === 0) continue;
      expect(`${h.head.treeSize}:${hexEncode(h.head.root)}`).toBe(`${h.head.treeSize}:${bySize.get(h.head.treeSize)}`);
    }
    // Sizes and timestamps never go back.
    for (let i = 1; i < heads.length; i++) {
      expect(heads[i]!.head.treeSize).toBeGreaterThanOrEqual(heads[i - 1]!.head.treeSize);
      expect(heads[i]!.head.timestamp).toBeGreaterThanOrEqual(heads[i - 1]!.head.timestamp);
    }
    // And the served view agrees: quorum 0 here (no witnesses), the newest STH is served.
    const served = parseSth(b64uDecode((await get(stack.origin, '/v1/kt/sth')).body.sth as string));
    expect(verifySthLogSignature(served, logPk)).toBe(true);
  }, 60_000);

  it('rate-limits the unauthenticated reads per client address', async () => {
    let limited: Record<string, unknown> | undefined;
    for (let i = 0; i < 260 && !limited; i++) {
      const res = await get(stack.origin, '/v1/kt/leaves?start=0&limit=1');
      if (res.status === 429) limited = res.body;
    }
    expect(limited && errorCode(limited)).toBe('RATE_LIMITED');
  }, 30_000);
});

describe('key-transparency log: no witness answers', () => {
  const logSk = generateSecretKey();
  const witnessPk = pub(generateSecretKey());
  let stack: TestStack;

  beforeAll(async () => {
    stack = await TestStack.start({
      instances: { gateway: 0, 'message-relay': 0 },
      env: { KT_LOG_SIGNING_KEY: hexEncode(logSk), KT_WITNESSES: `http://127.0.0.1:1|${hexEncode(witnessPk)}`, KT_WITNESS_TIMEOUT_MS: '500' },
    });
  }, 30_000);
  afterAll(() => stack.stop());

  it('serves no tree head without the quorum (503 with Retry-After), and counts the failed pushes in /metrics', async () => {
    const kd = stack.of('key-directory')[0]!;
    await waitFor(async () => (await (await fetch(`${kd.svc.url}/metrics`)).text()).includes('umbra_kt_witness_failures_total{'), 10_000, 'a witness failure counted');
    const metrics = await (await fetch(`${kd.svc.url}/metrics`)).text();
    expect(metrics).toMatch(/umbra_kt_witness_failures_total\{[^}]*reason="unreachable"[^}]*\} [1-9]/);
    expect(metrics).toMatch(/umbra_kt_tree_size\{[^}]*\} [1-9]/);
    for (const path of ['/v1/kt/sth', `/v1/kt/lookup?type=1&label=${b64uEncode(new Uint8Array(32))}`, '/v1/kt/leaves']) {
      const res = await fetch(`${stack.origin}${path}`);
      expect(`${path} ${res.status} ${errorCode((await res.json()) as Record<string, unknown>)}`).toBe(`${path} 503 UNAVAILABLE`);
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    }
    // The config still tells clients what to expect.
    expect((await get(stack.origin, '/v1/kt/config')).body.quorum).toBe(1);
  }, 20_000);
});

import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import {
  b64uDecode,
  b64uEncode,
  consistencyProof,
  createSth,
  encodeConsistencyProof,
  generateSecretKey,
  hexEncode,
  ktKeyId,
  merkleRoot,
  parseCosignature,
  pub,
  sha256,
  verifyCosignature,
  type SignedTreeHead,
} from '@umbra/crypto';
import { WITNESS_PATHS, WitnessStateResponseSchema, type ErrorBody } from '@umbra/protocol';
import { createServiceApp, type ServiceApp } from '@umbra/server';
import { witnessService } from '../services/witness/src/witness.service';
import { LogCapture, TEST_DATABASE_URL, TEST_REDIS_URL, migrateTestDatabase } from './support/harness';

/**
 * umbra-witness (PROTOCOL.md §12, issue 15) against real Postgres and Redis: it cosigns a log's honest
 * growth, asks for a proof from its own size (409), refuses forks at the same size and rollbacks for
 * good (422, sticky), refuses a bad consistency proof and another log's heads, keeps its state across
 * a restart, and two replicas on one database never cosign two conflicting heads. The "log" here is a
 * key and an in-memory list of leaves; every test has its own log key (witness_state is per log).
 */

/** A test log: a signing key and its leaves; heads and proofs over any prefix. */
class FakeLog {
  readonly sk = generateSecretKey();
  readonly pk = pub(this.sk);
  leaves: Uint8Array[] = [];

  grow(n: number): this {
    for (let i = 0; i < n; i++) this.leaves.push(new Uint8Array(randomBytes(82)));
    return this;
  }

  /** A fork: the first `keep` leaves, then different ones. */
  forkAt(keep: number): FakeLog {
    const other = new FakeLog();
    Object.assign(other, { sk: this.sk, pk: this.pk });
    other.leaves = this.leaves.slice(0, keep);
    return other;
  }

  sth(size: number, timestamp = Date.now(), signer = this.sk, signerPk = this.pk): SignedTreeHead {
    const root = size === 0 ? sha256(new Uint8Array(0)) : merkleRoot(this.leaves.slice(0, size));
    return createSth(signer, { logPk: signerPk, treeSize: size, timestamp, root });
  }

  proof(from: number, to: number): string {
    const path = from === 0 || from === to ? [] : consistencyProof(from, this.leaves.slice(0, to));
    return b64uEncode(encodeConsistencyProof({ firstSize: from, secondSize: to, path }));
  }
}

interface Answer {
  status: number;
  json: { cosignature?: string } & Partial<ErrorBody>;
}

const logs = new LogCapture();
const apps: ServiceApp[] = [];
const prefix = `w${randomBytes(5).toString('hex')}`;

async function startWitness(logPk: Uint8Array, witnessSk = generateSecretKey(), extraEnv: Record<string, string> = {}): Promise<{ app: ServiceApp; url: string; sk: Uint8Array; pk: Uint8Array }> {
  const app = await createServiceApp(witnessService, {
    env: {
      NODE_ENV: 'test',
      DATABASE_URL: TEST_DATABASE_URL,
      DATABASE_POOL_SIZE: '4',
      REDIS_URL: TEST_REDIS_URL,
      REDIS_PREFIX: prefix,
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      WITNESS_SIGNING_KEY: hexEncode(witnessSk),
      WITNESS_LOG_PUBLIC_KEY: hexEncode(logPk),
      INSTANCE_ID: `witness-${randomBytes(3).toString('hex')}`,
      WITNESS_RATE_LIMIT_PER_IP_PER_MINUTE: '10000',
      ...extraEnv,
    },
    logDestination: logs,
  });
  apps.push(app);
  return { app, url: app.url, sk: witnessSk, pk: pub(witnessSk) };
}

async function stop(app: ServiceApp): Promise<void> {
  apps.splice(apps.indexOf(app), 1);
  await app.app.close();
}

async function addSth(url: string, sth: SignedTreeHead, oldSize: number, proof: string): Promise<Answer> {
  const res = await fetch(`${url}${WITNESS_PATHS.addSth}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ sth: b64uEncode(sth.bytes), oldSize, proof }),
  });
  return { status: res.status, json: (await res.json()) as Answer['json'] };
}

async function push(url: string, log: FakeLog, size: number, oldSize: number, timestamp = Date.now()): Promise<Answer> {
  return addSth(url, log.sth(size, timestamp), oldSize, log.proof(oldSize, size));
}

async function state(url: string) {
  const res = await fetch(`${url}${WITNESS_PATHS.state}`);
  expect(res.status).toBe(200);
  return WitnessStateResponseSchema.parse(await res.json());
}

async function forksMetric(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/^umbra_witness_forks_total\{[^}]*\} (\d+)/m.exec(text)?.[1] ?? '0');
}

async function expectPushCosigned(url: string, log: FakeLog, size: number, oldSize: number, witnessPk: Uint8Array): Promise<void> {
  const sth = log.sth(size);
  expectCosigned(await addSth(url, sth, oldSize, log.proof(oldSize, size)), sth, witnessPk);
}

function expectCosigned(a: Answer, sth: SignedTreeHead, witnessPk: Uint8Array): void {
  expect(a.status).toBe(200);
  const c = parseCosignature(b64uDecode(a.json.cosignature!));
  expect(hexEncode(c.witnessId)).toBe(hexEncode(ktKeyId(witnessPk)));
  expect(verifyCosignature(sth.tbs, c, witnessPk)).toBe(true);
  expect(Math.abs(c.t - Date.now())).toBeLessThan(60_000);
}

beforeAll(async () => {
  await migrateTestDatabase();
});

afterAll(async () => {
  for (const app of [...apps]) await app.app.close().catch(() => undefined);
});

describe('umbra-witness', () => {
  it('serves /healthz, /readyz and /metrics', async () => {
    const w = await startWitness(new FakeLog().pk);
    expect((await fetch(`${w.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${w.url}/readyz`)).status).toBe(200);
    expect(await (await fetch(`${w.url}/metrics`)).text()).toContain('umbra_witness_add_sth_total');
    await stop(w.app);
  });

  it('cosigns honest growth: the first head on trust, then each proven extension, and the same head again', async () => {
    const log = new FakeLog().grow(3);
    const w = await startWitness(log.pk);
    const before = await state(w.url);
    expect(before).toMatchObject({ treeSize: 0, cosignedAt: 0, forked: false, logId: hexEncode(ktKeyId(log.pk)), witnessId: hexEncode(ktKeyId(w.pk)) });
    expect(before.root).toBe(b64uEncode(sha256(new Uint8Array(0))));

    const first = log.sth(3);
    expectCosigned(await addSth(w.url, first, 0, log.proof(0, 3)), first, w.pk);
    expect(logs.text()).toContain('kt.witness.first-sth');
    expect(await state(w.url)).toMatchObject({ treeSize: 3, root: b64uEncode(first.head.root) });

    log.grow(4);
    const second = log.sth(7);
    expectCosigned(await addSth(w.url, second, 3, log.proof(3, 7)), second, w.pk);
    log.grow(9); // 16: a power of two, then 17 (the proof starts at a power of two and ends past it)
    await expectPushCosigned(w.url, log, 16, 7, w.pk);
    log.grow(1);
    await expectPushCosigned(w.url, log, 17, 16, w.pk);
    const again = log.sth(17, Date.now() + 1);
    expectCosigned(await addSth(w.url, again, 17, log.proof(17, 17)), again, w.pk);
    const s = await state(w.url);
    expect(s).toMatchObject({ treeSize: 17, forked: false });
    expect(s.cosignedAt).toBeGreaterThan(0);
    expect(await forksMetric(w.url)).toBe(0);
    await stop(w.app);
  });

  it('answers 409 WITNESS_OLD_SIZE_MISMATCH with its own size when the proof starts elsewhere; the retry from there is cosigned', async () => {
    const log = new FakeLog().grow(5);
    const w = await startWitness(log.pk);
    expect((await push(w.url, log, 5, 0)).status).toBe(200);
    log.grow(6);
    const wrong = await push(w.url, log, 11, 2);
    expect(wrong.status).toBe(409);
    expect(wrong.json.error).toMatchObject({ code: 'WITNESS_OLD_SIZE_MISMATCH', details: { treeSize: 5 } });
    await expectPushCosigned(w.url, log, 11, 5, w.pk);
    await stop(w.app);
  });

  it('refuses a fork at the same size for good: 422 KT_FORK_DETECTED, kt.witness.fork logged, counted, and sticky', async () => {
    const log = new FakeLog().grow(6);
    const w = await startWitness(log.pk);
    expect((await push(w.url, log, 6, 0)).status).toBe(200);
    log.grow(4);
    expect((await push(w.url, log, 10, 6)).status).toBe(200);
    const fork = log.forkAt(6).grow(4); // same first 6 leaves, different last 4: size 10, another root
    const refused = await push(w.url, fork, 10, 10);
    expect(refused.status).toBe(422);
    expect(refused.json.error?.code).toBe('KT_FORK_DETECTED');
    const event = logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.event === 'kt.witness.fork' && (l.logId as string) === hexEncode(ktKeyId(log.pk)));
    expect(event).toMatchObject({ level: 'error', reason: 'same-size-different-root', cosigned: { treeSize: 10 }, presented: { treeSize: 10 } });
    expect(await forksMetric(w.url)).toBe(1);
    expect((await state(w.url)).forked).toBe(true);
    // Sticky: even the honest log's next, valid extension is refused now.
    log.grow(2);
    const after = await push(w.url, log, 12, 10);
    expect(after.status).toBe(422);
    expect(after.json.error?.code).toBe('KT_FORK_DETECTED');
    expect(await state(w.url)).toMatchObject({ treeSize: 10, root: b64uEncode(log.sth(10).head.root) });
    await stop(w.app);
  });

  it('refuses a rollback (a newer head of a smaller tree) as a fork; an older head replayed is refused without disabling the witness', async () => {
    const replayed = new FakeLog().grow(4);
    const w1 = await startWitness(replayed.pk);
    const old = replayed.sth(4, Date.now() - 60_000);
    expect((await addSth(w1.url, old, 0, replayed.proof(0, 4))).status).toBe(200);
    replayed.grow(4);
    expect((await push(w1.url, replayed, 8, 4)).status).toBe(200);
    const replay = await addSth(w1.url, old, 4, replayed.proof(4, 4));
    expect(replay.status).toBe(422);
    expect((await state(w1.url)).forked).toBe(false);
    replayed.grow(1);
    expect((await push(w1.url, replayed, 9, 8)).status).toBe(200);
    await stop(w1.app);

    const log = new FakeLog().grow(8);
    const w2 = await startWitness(log.pk);
    expect((await push(w2.url, log, 8, 0, Date.now() - 1000)).status).toBe(200);
    const rollback = await push(w2.url, log, 5, 5, Date.now());
    expect(rollback.status).toBe(422);
    expect(rollback.json.error?.code).toBe('KT_FORK_DETECTED');
    expect(await state(w2.url)).toMatchObject({ forked: true, treeSize: 8 });
    expect(await forksMetric(w2.url)).toBe(1);
    expect(logs.text()).toContain('"reason":"rollback"');
    await stop(w2.app);
  });

  it('refuses a consistency proof that does not verify (422) and keeps its state; the correct proof is then cosigned', async () => {
    const log = new FakeLog().grow(4);
    const w = await startWitness(log.pk);
    expect((await push(w.url, log, 4, 0)).status).toBe(200);
    log.grow(5);
    const sth = log.sth(9);
    const other = new FakeLog().grow(9); // a proof of another tree's growth from 4 to 9
    const bad = await addSth(w.url, sth, 4, other.proof(4, 9));
    expect(bad.status).toBe(422);
    expect(bad.json.error?.code).toBe('KT_FORK_DETECTED');
    const empty = await addSth(w.url, sth, 4, b64uEncode(encodeConsistencyProof({ firstSize: 4, secondSize: 9, path: [] })));
    expect(empty.status).toBe(422);
    expect(await state(w.url)).toMatchObject({ treeSize: 4, forked: false });
    expectCosigned(await addSth(w.url, sth, 4, log.proof(4, 9)), sth, w.pk);
    await stop(w.app);
  });

  it("refuses another log's heads and forged signatures (403), and bad input with stable 4xx codes, never 500", async () => {
    const log = new FakeLog().grow(3);
    const w = await startWitness(log.pk);
    const stranger = new FakeLog().grow(3);
    const foreign = await push(w.url, stranger, 3, 0);
    expect(foreign.status).toBe(403);
    expect(foreign.json.error?.code).toBe('FORBIDDEN');
    // Claims our log's id but is signed by another key.
    const forged = log.sth(3, Date.now(), stranger.sk, stranger.pk);
    const withOurId = createSthBytesWithLogId(forged, ktKeyId(log.pk));
    expect((await addSth(w.url, withOurId, 0, log.proof(0, 3))).status).toBe(403);
    const good = log.sth(3);
    const flipped = { ...good, bytes: Uint8Array.from(good.bytes, (b, i) => (i === 90 ? b ^ 1 : b)) };
    expect((await addSth(w.url, flipped, 0, log.proof(0, 3))).status).toBe(403);

    const post = (body: string, type = 'application/json') => fetch(`${w.url}${WITNESS_PATHS.addSth}`, { method: 'POST', headers: { 'content-type': type }, body });
    const cases: [string, number, string][] = [
      ['{', 400, 'MALFORMED_JSON'],
      [JSON.stringify({ sth: 'AAAA', oldSize: 0, proof: log.proof(0, 3) }), 400, 'VALIDATION_FAILED'],
      [JSON.stringify({ sth: b64uEncode(good.bytes) + '=', oldSize: 0, proof: log.proof(0, 3) }), 400, 'BAD_ENCODING'],
      [JSON.stringify({ sth: b64uEncode(good.bytes), oldSize: -1, proof: log.proof(0, 3) }), 400, 'VALIDATION_FAILED'],
      [JSON.stringify({ sth: b64uEncode(good.bytes), oldSize: 0, proof: log.proof(0, 3), extra: 1 }), 400, 'VALIDATION_FAILED'],
      [JSON.stringify({ sth: b64uEncode(good.bytes), oldSize: 1, proof: log.proof(0, 3) }), 400, 'VALIDATION_FAILED'],
      [JSON.stringify({ sth: b64uEncode(good.bytes), oldSize: 0, proof: log.proof(0, 2) }), 400, 'VALIDATION_FAILED'],
      [JSON.stringify({ sth: b64uEncode(new Uint8Array(good.bytes.length).fill(7)), oldSize: 0, proof: log.proof(0, 3) }), 400, 'VALIDATION_FAILED'],
      [JSON.stringify({ sth: b64uEncode(log.sth(3, Date.now() + 3_600_000).bytes), oldSize: 0, proof: log.proof(0, 3) }), 400, 'CLOCK_SKEW'],
      [JSON.stringify({ sth: b64uEncode(log.sth(0).bytes), oldSize: 0, proof: 'A'.repeat(5000) }), 400, 'VALIDATION_FAILED'],
    ];
    for (const [body, status, code] of cases) {
      const res = await post(body);
      const json = (await res.json()) as ErrorBody;
      expect(`${body.slice(0, 40)} → ${res.status} ${json.error.code}`).toBe(`${body.slice(0, 40)} → ${status} ${code}`);
    }
    expect((await post('x', 'text/plain')).status).toBe(415);
    expect((await post(JSON.stringify({ x: 'A'.repeat(100_000) }))).status).toBe(413);
    expect((await state(w.url)).treeSize).toBe(0);
    await stop(w.app);
  });

  it('answers mutated pushes (bit flips in the STH and proof, any oldSize) with a 4xx code: never a 5xx, never a cosignature, never a sticky fork', async () => {
    const log = new FakeLog().grow(6);
    const w = await startWitness(log.pk);
    expect((await push(w.url, log, 6, 0)).status).toBe(200);
    log.grow(5);
    const sth = log.sth(11);
    const proof = b64uDecode(log.proof(6, 11));
    const seen = new Set<number>();
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: sth.bytes.length * 8 - 1 }),
        fc.nat({ max: proof.length * 8 - 1 }),
        fc.boolean(),
        fc.oneof(fc.constant(6), fc.nat({ max: 20 })),
        async (sthBit, proofBit, flipProof, oldSize) => {
          const bytes = Uint8Array.from(sth.bytes);
          bytes[sthBit >> 3]! ^= 1 << (sthBit & 7);
          const p = Uint8Array.from(proof);
          if (flipProof) p[proofBit >> 3]! ^= 1 << (proofBit & 7);
          const res = await addSth(w.url, { ...sth, bytes }, oldSize, b64uEncode(p));
          seen.add(res.status);
          expect([400, 403, 409, 422]).toContain(res.status);
        },
      ),
      { numRuns: 150 },
    );
    expect([...seen].every((s) => s < 500)).toBe(true);
    // The unmodified push still goes through: nothing above was taken as evidence of a fork.
    expect(await state(w.url)).toMatchObject({ treeSize: 6, forked: false });
    expectCosigned(await addSth(w.url, sth, 6, b64uEncode(proof)), sth, w.pk);
    await stop(w.app);
  });

  it('limits requests per client address (429 RATE_LIMITED with Retry-After)', async () => {
    const log = new FakeLog().grow(2);
    const w = await startWitness(log.pk, generateSecretKey(), { WITNESS_RATE_LIMIT_PER_IP_PER_MINUTE: '3', REDIS_PREFIX: `w${randomBytes(5).toString('hex')}` });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await push(w.url, log, 2, 2)).status);
    expect(statuses).toEqual([200, 200, 200]);
    const limited = await fetch(`${w.url}${WITNESS_PATHS.addSth}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sth: b64uEncode(log.sth(2).bytes), oldSize: 2, proof: log.proof(2, 2) }) });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(((await limited.json()) as ErrorBody).error.code).toBe('RATE_LIMITED');
    await stop(w.app);
  });

  it('keeps its state across a restart: a fork presented to the new process is still detected', async () => {
    const log = new FakeLog().grow(7);
    const sk = generateSecretKey();
    const a = await startWitness(log.pk, sk);
    expect((await push(a.url, log, 7, 0)).status).toBe(200);
    await stop(a.app);
    const b = await startWitness(log.pk, sk);
    expect(await state(b.url)).toMatchObject({ treeSize: 7, root: b64uEncode(log.sth(7).head.root), forked: false });
    const fork = log.forkAt(3).grow(4);
    expect((await push(b.url, fork, 7, 7)).status).toBe(422);
    await stop(b.app);
    const c = await startWitness(log.pk, sk);
    expect((await state(c.url)).forked).toBe(true);
    await stop(c.app);
  });

  it('two replicas on one database never cosign two conflicting heads, however the pushes race', async () => {
    const sk = generateSecretKey();
    const rounds = 6;
    let cosignedBoth = 0;
    for (let round = 0; round < rounds; round++) {
      const log = new FakeLog().grow(4);
      const a = await startWitness(log.pk, sk);
      const b = await startWitness(log.pk, sk);
      expect((await push(a.url, log, 4, 0)).status).toBe(200);
      const x = log.forkAt(4).grow(5);
      const y = log.forkAt(4).grow(5);
      const [ax, by] = await Promise.all([push(a.url, x, 9, 4), push(b.url, y, 9, 4)]);
      const statuses = [ax.status, by.status].sort();
      expect(statuses).toEqual([200, 422]);
      if (ax.status === 200 && by.status === 200) cosignedBoth++;
      const winner = ax.status === 200 ? x : y;
      expect(await state(b.url)).toMatchObject({ treeSize: 9, root: b64uEncode(winner.sth(9).head.root), forked: true });
      await stop(a.app);
      await stop(b.app);
    }
    expect(cosignedBoth).toBe(0);
  });

  it('first contact from two replicas at once: one head wins, the other is refused', async () => {
    const sk = generateSecretKey();
    const log = new FakeLog().grow(3);
    const a = await startWitness(log.pk, sk);
    const b = await startWitness(log.pk, sk);
    const x = log.forkAt(0).grow(3);
    const [ax, by] = await Promise.all([push(a.url, log, 3, 0), push(b.url, x, 3, 0)]);
    expect([ax.status, by.status].sort()).toEqual([200, 422]);
    await stop(a.app);
    await stop(b.app);
  });
});

/** An STH whose TreeHeadTBS names `logId` but whose signature is the one `sth` carries (a forgery). */
function createSthBytesWithLogId(sth: SignedTreeHead, logId: Uint8Array): SignedTreeHead {
  const bytes = new Uint8Array(sth.bytes);
  bytes.set(logId, 1);
  const tbs = bytes.slice(0, 81);
  return { ...sth, tbs, head: { ...sth.head, logId }, bytes };
}

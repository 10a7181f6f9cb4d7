import { randomBytes } from 'node:crypto';
import {
  b64uDecode,
  b64uEncode,
  createSth,
  encodeConsistencyProof,
  generateSecretKey,
  hexEncode,
  ktKeyId,
  pub,
  verifySth,
} from '@umbra/crypto';
import { WITNESS_PATHS, WitnessStateResponseSchema } from '@umbra/protocol';
import { createServiceApp, type ServiceApp } from '@umbra/server';
import { witnessService } from '../services/witness/src/witness.service';
import { ClientPool } from './support/clients';
import { LogCapture, TEST_DATABASE_URL, TEST_REDIS_URL, TestStack, migrateTestDatabase, waitFor } from './support/harness';

/**
 * The real key-transparency log (key-directory) and two real witnesses (umbra-witness) together, with
 * a quorum of two: every STH the log serves carries both cosignatures, each witness's stored head
 * follows the log as it grows (the witnesses check the log's own consistency proofs), a restarted
 * witness picks up where it was, and a witness shown a fork refuses the log for good, after which the
 * log serves no newer STH (it cannot reach its quorum).
 */

const logSk = generateSecretKey();
const logPk = pub(logSk);
const logs = new LogCapture();
const prefix = `wl${randomBytes(4).toString('hex')}`;

interface RunningWitness {
  app: ServiceApp;
  url: string;
  sk: Uint8Array;
  pk: Uint8Array;
}

async function startWitness(sk: Uint8Array, port = 0): Promise<RunningWitness> {
  const app = await createServiceApp(witnessService, {
    env: {
      NODE_ENV: 'test',
      DATABASE_URL: TEST_DATABASE_URL,
      DATABASE_POOL_SIZE: '2',
      REDIS_URL: TEST_REDIS_URL,
      REDIS_PREFIX: prefix,
      PORT: String(port),
      HOST: '127.0.0.1',
      WITNESS_SIGNING_KEY: hexEncode(sk),
      WITNESS_LOG_PUBLIC_KEY: hexEncode(logPk),
      INSTANCE_ID: `witness-${hexEncode(pub(sk)).slice(0, 6)}`,
    },
    logDestination: logs,
  });
  return { app, url: app.url, sk, pk: pub(sk) };
}

async function witnessState(w: RunningWitness) {
  return WitnessStateResponseSchema.parse(await (await fetch(`${w.url}${WITNESS_PATHS.state}`)).json());
}

describe('the KT log with two real witnesses (quorum 2)', () => {
  let a: RunningWitness;
  let b: RunningWitness;
  let stack: TestStack;
  const pool = new ClientPool(() => stack.origin);

  const servedSth = async () => {
    const res = await fetch(`${stack.origin}/v1/kt/sth`);
    if (res.status !== 200) return undefined;
    const body = (await res.json()) as { sth: string };
    return verifySth(b64uDecode(body.sth), { logPk, witnessPks: [a.pk, b.pk], minCosigners: 2 }, Date.now());
  };

  beforeAll(async () => {
    await migrateTestDatabase();
    a = await startWitness(generateSecretKey());
    b = await startWitness(generateSecretKey());
    stack = await TestStack.start({
      env: {
        KT_LOG_SIGNING_KEY: hexEncode(logSk),
        KT_WITNESSES: `${a.url}|${hexEncode(a.pk)},${b.url}|${hexEncode(b.pk)}`,
        KT_WITNESS_QUORUM: '2',
        KT_SEQUENCE_INTERVAL_MS: '100',
        KT_STH_INTERVAL_MS: '300',
        KT_WITNESS_TIMEOUT_MS: '2000',
      },
    });
  }, 30_000);

  afterAll(async () => {
    await pool.closeAll();
    await stack?.stop();
    await a?.app.app.close().catch(() => undefined);
    await b?.app.app.close().catch(() => undefined);
  });

  it('serves STHs cosigned by both witnesses, and each witness stores the head it cosigned', async () => {
    await waitFor(async () => (await servedSth()) !== undefined, 15_000, 'an STH with both cosignatures');
    const sth = (await servedSth())!;
    expect(sth.cosignatures.map((c) => hexEncode(c.witnessId)).sort()).toEqual([hexEncode(ktKeyId(a.pk)), hexEncode(ktKeyId(b.pk))].sort());
    for (const w of [a, b]) {
      const s = await witnessState(w);
      expect(s.logId).toBe(hexEncode(ktKeyId(logPk)));
      expect(s.forked).toBe(false);
      expect(s.treeSize).toBeGreaterThanOrEqual(sth.head.treeSize);
    }
    expect(logs.text()).toContain('kt.witness.first-sth');
  });

  it('the witnesses follow the log as it grows: registrations become leaves under heads both cosigned', async () => {
    const before = (await servedSth())!;
    await pool.registered();
    await pool.registered();
    await waitFor(async () => ((await servedSth())?.head.treeSize ?? 0) >= before.head.treeSize + 2, 15_000, 'a larger cosigned STH');
    const after = (await servedSth())!;
    for (const w of [a, b]) {
      const s = await witnessState(w);
      expect(s.treeSize).toBeGreaterThanOrEqual(after.head.treeSize);
      expect(s.forked).toBe(false);
    }
    // Growth was checked by the witnesses, not trusted: nothing was refused on the way.
    expect(logs.text()).not.toContain('kt.witness.inconsistent');
    expect(logs.text()).not.toContain('"event":"kt.witness.fork"');
  });

  it('a restarted witness continues from its stored head and keeps cosigning', async () => {
    const port = Number(new URL(a.url).port);
    const stored = await witnessState(a);
    await a.app.app.close();
    a = await startWitness(a.sk, port);
    expect((await witnessState(a)).treeSize).toBe(stored.treeSize);
    const restartedAt = Date.now();
    await pool.registered();
    await waitFor(async () => {
      const sth = await servedSth();
      return sth !== undefined && sth.head.timestamp > restartedAt && sth.head.treeSize > stored.treeSize;
    }, 15_000, 'a larger STH cosigned after the restart');
    expect((await witnessState(a)).treeSize).toBeGreaterThan(stored.treeSize);
  });

  it('a witness shown a fork refuses the log from then on, and the log serves no newer STH without its quorum', async () => {
    const s = await witnessState(b);
    // The log's key signs another root at the size b last cosigned: a split view.
    const fork = createSth(logSk, { logPk, treeSize: s.treeSize, timestamp: Date.now(), root: randomBytes(32) });
    const proof = b64uEncode(encodeConsistencyProof({ firstSize: s.treeSize, secondSize: s.treeSize, path: [] }));
    const res = await fetch(`${b.url}${WITNESS_PATHS.addSth}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sth: b64uEncode(fork.bytes), oldSize: s.treeSize, proof }),
    });
    expect(res.status).toBe(422);
    expect((await witnessState(b)).forked).toBe(true);
    const forkedAt = Date.now();
    await pool.registered();
    await waitFor(() => stack.logs.text().includes('kt.witness.fork-reported'), 10_000, 'the log noticing the refusal');
    await new Promise((r) => setTimeout(r, 1500));
    const served = await servedSth();
    expect(served === undefined || served.head.timestamp < forkedAt).toBe(true);
  });
});

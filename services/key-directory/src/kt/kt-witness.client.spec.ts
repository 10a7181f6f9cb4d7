import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import {
  b64uDecode,
  b64uEncode,
  createCosignature,
  createSth,
  encodeConsistencyProof,
  encodeCosignature,
  generateSecretKey,
  hexEncode,
  ktKeyId,
  merkleRoot,
  parseConsistencyProof,
  pub,
} from '@umbra/crypto';
import { Metrics, createLogger } from '@umbra/server';
import { KtWitnessClient } from './kt-witness.client';

const logSk = generateSecretKey();
const logPk = pub(logSk);
const wSk = generateSecretKey();
const wPk = pub(wSk);
const sth = createSth(logSk, { logPk, treeSize: 3, timestamp: 1_700_000_000_000, root: merkleRoot([Uint8Array.of(1), Uint8Array.of(2), Uint8Array.of(3)]) });

type Handler = (body: { sth: string; oldSize: number; proof: string }, res: ServerResponse) => void;

describe('KtWitnessClient', () => {
  let server: Server;
  let url = '';
  let handler: Handler = () => undefined;
  const seen: { oldSize: number; proofFirst: number }[] = [];
  const lines: string[] = [];
  const logger = createLogger({ service: 'key-directory', instanceId: 't', level: 'info', destination: new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) }) });
  const metrics = new Metrics('key-directory', false);
  const witness = () => ({ url, publicKey: wPk, id: ktKeyId(wPk), label: hexEncode(ktKeyId(wPk)).slice(0, 16) });
  const proofFrom = async (old: number) => encodeConsistencyProof({ firstSize: old, secondSize: 3, path: [] });
  const json = (res: ServerResponse, status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  const good = (res: ServerResponse) => json(res, 200, { cosignature: b64uEncode(encodeCosignature(createCosignature(sth.tbs, wSk, wPk, 5))) });

  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res) => {
      let raw = '';
      req.on('data', (c: Buffer) => (raw += c.toString()));
      req.on('end', () => {
        const body = JSON.parse(raw) as { sth: string; oldSize: number; proof: string };
        seen.push({ oldSize: body.oldSize, proofFirst: parseConsistencyProof(b64uDecode(body.proof)).firstSize });
        handler(body, res);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));
  beforeEach(() => (seen.length = 0));

  it('returns a cosignature it verified; after a 409 it re-proves once from the size the witness names', async () => {
    const client = new KtWitnessClient(2000, logger, metrics);
    handler = (b, res) => (b.oldSize === 2 ? good(res) : json(res, 409, { error: { code: 'WITNESS_OLD_SIZE_MISMATCH', details: { treeSize: 2 } } }));
    const out = await client.push(witness(), sth, proofFrom, 0);
    expect(out.ok).toBe(true);
    expect(seen).toEqual([{ oldSize: 0, proofFirst: 0 }, { oldSize: 2, proofFirst: 2 }]);
    // It remembers the witness's size for the next push.
    handler = (_b, res) => good(res);
    await client.push(witness(), sth, proofFrom, 0);
    expect(seen[2]).toEqual({ oldSize: 3, proofFirst: 3 });
  });

  it('refuses a cosignature by another key or over another head, reports 422 as a fork, and backs off a failing witness', async () => {
    const client = new KtWitnessClient(2000, logger, metrics);
    const other = generateSecretKey();
    handler = (_b, res) => json(res, 200, { cosignature: b64uEncode(encodeCosignature(createCosignature(sth.tbs, other, pub(other), 5))) });
    expect(await client.push(witness(), sth, proofFrom, 0)).toEqual({ ok: false, reason: 'bad_cosignature' });
    const client2 = new KtWitnessClient(2000, logger, metrics);
    const otherHead = createSth(logSk, { logPk, treeSize: 3, timestamp: 1, root: new Uint8Array(32) });
    handler = (_b, res) => json(res, 200, { cosignature: b64uEncode(encodeCosignature(createCosignature(otherHead.tbs, wSk, wPk, 5))) });
    expect(await client2.push(witness(), sth, proofFrom, 0)).toEqual({ ok: false, reason: 'bad_cosignature' });
    const client3 = new KtWitnessClient(2000, logger, metrics);
    handler = (_b, res) => json(res, 422, { error: { code: 'KT_FORK_DETECTED' } });
    expect(await client3.push(witness(), sth, proofFrom, 1000)).toEqual({ ok: false, reason: 'fork_reported' });
    expect(lines.join('')).toContain('kt.witness.fork-reported');
    // Within the backoff the witness is not called at all; after it, it is.
    const calls = seen.length;
    expect(await client3.push(witness(), sth, proofFrom, 1100)).toEqual({ ok: false, reason: 'backoff' });
    expect(seen.length).toBe(calls);
    handler = (_b, res) => good(res);
    expect((await client3.push(witness(), sth, proofFrom, 1000 + 60_001)).ok).toBe(true);
    const failures = await metrics.registry.getSingleMetricAsString('umbra_kt_witness_failures_total');
    expect(failures).toMatch(/reason="bad_cosignature"[^\n]* 2/);
    expect(failures).toMatch(/reason="fork_reported"[^\n]* 1/);
  });

  it('skips a head older than what the witness already cosigned, and reports an unreachable witness', async () => {
    const client = new KtWitnessClient(2000, logger, metrics);
    handler = (_b, res) => json(res, 409, { error: { code: 'WITNESS_OLD_SIZE_MISMATCH', details: { treeSize: 7 } } });
    expect(await client.push(witness(), sth, proofFrom, 0)).toEqual({ ok: false, reason: 'superseded' });
    const down = { ...witness(), url: 'http://127.0.0.1:1' };
    expect(await new KtWitnessClient(500, logger, metrics).push(down, sth, proofFrom, 0)).toEqual({ ok: false, reason: 'unreachable' });
  });
});

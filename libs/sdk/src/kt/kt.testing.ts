import {
  b64uEncode,
  consistencyProof,
  cosignSth,
  createLookupResult,
  createSth,
  encodeConsistencyProof,
  encodeKtLeaf,
  generateSecretKey,
  hexEncode,
  inclusionProof,
  merkleRoot,
  pub,
  sha256,
  type SignedTreeHead,
} from '@umbra/crypto';
import type { KtTrustConfig } from './kt.verifier';

/**
 * An in-memory key-transparency log for tests (unit specs and attack e2e tests): real §12
 * structures, signed with its own keys, so tests can build honest answers and forge dishonest ones.
 */
export class FakeKtLog {
  readonly logSk = generateSecretKey();
  readonly logPk = pub(this.logSk);
  readonly witnessSk = generateSecretKey();
  readonly witnessPk = pub(this.witnessSk);
  readonly leaves: Uint8Array[] = [];
  readonly statements: Uint8Array[] = [];

  /** Most results one monitor answer carries (the real server's page size is 1000). */
  monitorPage = 1000;

  constructor(public now: () => number = () => Date.now()) {}

  trust(quorum = 1): KtTrustConfig {
    return { logPublicKey: hexEncode(this.logPk), witnesses: [{ publicKey: hexEncode(this.witnessPk) }], quorum };
  }

  append(type: 1 | 2, label: Uint8Array, version: number, statement: Uint8Array, valueHash: Uint8Array = sha256(statement)): number {
    this.leaves.push(encodeKtLeaf({ type, label, version, logTime: this.now(), valueHash }));
    this.statements.push(statement);
    return this.leaves.length - 1;
  }

  /** The STH of the first `size` leaves, log-signed and (unless `cosign` is false) witness-cosigned. */
  sth(size = this.leaves.length, opts: { timestamp?: number; root?: Uint8Array; cosign?: boolean; logSk?: Uint8Array } = {}): SignedTreeHead {
    const root = opts.root ?? merkleRoot(this.leaves.slice(0, size));
    const sth = createSth(opts.logSk ?? this.logSk, { logPk: this.logPk, treeSize: size, timestamp: opts.timestamp ?? this.now(), root });
    return opts.cosign === false ? sth : cosignSth(sth, this.witnessSk, this.witnessPk, opts.timestamp ?? this.now());
  }

  lookupAt(index: number, sth: SignedTreeHead = this.sth(), statement: Uint8Array = this.statements[index]!): Uint8Array {
    const size = sth.head.treeSize;
    return createLookupResult(this.logSk, { leafBytes: this.leaves[index]!, leafIndex: index, sth, inclusion: inclusionProof(index, this.leaves.slice(0, size)), statement }).bytes;
  }

  /** Index of the latest (highest version) leaf of a label, or -1. */
  latest(type: 1 | 2, label: Uint8Array, size = this.leaves.length): number {
    let best = -1;
    let bestVersion = -1;
    const want = hexEncode(label);
    for (let i = 0; i < size; i++) {
      const l = this.leaves[i]!;
      if (l[1] !== type || hexEncode(l.subarray(2, 34)) !== want) continue;
      const version = Number(new DataView(l.buffer, l.byteOffset + 34, 8).getBigUint64(0));
      if (version >= bestVersion) {
        best = i;
        bestVersion = version;
      }
    }
    return best;
  }

  consistency(first: number, second: number): Uint8Array {
    return encodeConsistencyProof({ firstSize: first, secondSize: second, path: consistencyProof(first, this.leaves.slice(0, second)) });
  }

  /**
   * A fetch that answers the KT routes from this log (overridable per route). Everything else is
   * a 404. `calls` counts requests per route.
   */
  fetch(overrides: Partial<Record<'sth' | 'lookup' | 'consistency' | 'monitor' | 'config', (q: URLSearchParams) => unknown>> = {}) {
    const calls: Record<string, number> = {};
    const fn = async (input: string | URL | Request): Promise<Response> => {
      const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
      const route = url.pathname.replace('/v1/kt/', '') as 'sth' | 'lookup' | 'consistency' | 'monitor' | 'config';
      calls[route] = (calls[route] ?? 0) + 1;
      const q = url.searchParams;
      const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
      const override = overrides[route];
      if (override) {
        const body = override(q);
        if (body instanceof Response) return body;
        return json(200, body);
      }
      switch (route) {
        case 'config':
          return json(200, { ...this.trust(), mmdMs: 3_600_000, maxSthAgeMs: 86_400_000 });
        case 'sth':
          return json(200, { sth: b64uEncode(this.sth().bytes) });
        case 'consistency':
          return json(200, { proof: b64uEncode(this.consistency(Number(q.get('first')), Number(q.get('second')))) });
        case 'lookup': {
          const i = this.latest(Number(q.get('type')) as 1 | 2, Buffer.from(q.get('label')!, 'base64url'));
          if (i < 0) return json(404, { error: { code: 'KT_LABEL_NOT_FOUND', message: 'no leaf' } });
          return json(200, { result: b64uEncode(this.lookupAt(i)) });
        }
        case 'monitor': {
          const type = Number(q.get('type'));
          const label = hexEncode(Buffer.from(q.get('label')!, 'base64url'));
          const since = Number(q.get('since'));
          const sth = this.sth();
          const results: string[] = [];
          for (let i = since; i < this.leaves.length; i++) {
            const l = this.leaves[i]!;
            if (results.length >= this.monitorPage) break;
            if (l[1] === type && hexEncode(l.subarray(2, 34)) === label) results.push(b64uEncode(this.lookupAt(i, sth)));
          }
          return json(200, { results, sth: b64uEncode(sth.bytes) });
        }
        default:
          return json(404, { error: { code: 'NOT_FOUND', message: 'no route' } });
      }
    };
    return { fetch: fn as typeof fetch, calls };
  }
}

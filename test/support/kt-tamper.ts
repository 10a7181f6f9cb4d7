import {
  b64uDecode,
  b64uEncode,
  consistencyProof,
  cosignSth,
  createLookupResult,
  createSth,
  encodeConsistencyProof,
  encodeKtLeaf,
  inclusionProof,
  merkleRoot,
  parseLookupResult,
  pub,
  randomBytes,
  sha256,
  type LookupResult,
  type SignedTreeHead,
} from '@umbra/crypto';
import type { FetchFn } from '@umbra/sdk';

/** A rule: answers a matching request itself, or rewrites the server's JSON answer. */
interface Rule {
  match: RegExp;
  method: string;
  answer?: (url: URL) => unknown | Promise<unknown>;
  rewrite?: (body: unknown, url: URL) => unknown | Promise<unknown>;
}

/**
 * A man in the middle for one client's REST calls: the attacks where "the server returns X". It
 * forwards to the real stack, except where a rule answers or rewrites. `requests` records every
 * call (method and path with query) so a test can show what the client did, or did not, ask for.
 */
export class KtTamper {
  readonly requests: string[] = [];
  private rules: Rule[] = [];

  readonly fetch: FetchFn = async (input, init) => {
    const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
    const method = (init?.method ?? 'GET').toUpperCase();
    this.requests.push(`${method} ${url.pathname}${url.search}`);
    const rule = this.rules.find((r) => r.method === method && r.match.test(url.pathname + url.search));
    if (rule?.answer) return json(200, await rule.answer(url));
    const res = await globalThis.fetch(input, init);
    if (!rule?.rewrite || !res.ok) return res;
    return json(res.status, await rule.rewrite(await res.json(), url));
  };

  /** Answers matching GETs without asking the server. */
  answer(match: RegExp, fn: (url: URL) => unknown | Promise<unknown>): this {
    this.rules.push({ match, method: 'GET', answer: fn });
    return this;
  }

  /** Rewrites the server's JSON answer to matching GETs. */
  rewrite(match: RegExp, fn: (body: unknown, url: URL) => unknown | Promise<unknown>): this {
    this.rules.push({ match, method: 'GET', rewrite: fn });
    return this;
  }

  clear(): void {
    this.rules = [];
  }

  /** Requests since `mark` (an index into `requests`). */
  since(mark: number): string[] {
    return this.requests.slice(mark);
  }
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
}

/**
 * What a compromised log operator (holding the log key, and in some tests a witness key too) can
 * sign: tree heads and lookups of its choosing.
 */
export class KtForger {
  readonly logPk: Uint8Array;
  readonly witnessPk: Uint8Array;

  constructor(
    private readonly logSk: Uint8Array,
    private readonly witnessSk: Uint8Array,
  ) {
    this.logPk = pub(logSk);
    this.witnessPk = pub(witnessSk);
  }

  sth(head: { treeSize: number; root: Uint8Array; timestamp: number }, cosign: boolean): SignedTreeHead {
    const sth = createSth(this.logSk, { logPk: this.logPk, ...head });
    return cosign ? cosignSth(sth, this.witnessSk, this.witnessPk, head.timestamp) : sth;
  }

  /** The same lookup under a re-signed STH of the same tree with another timestamp (a stale head). */
  restamp(lookupB64: string, timestamp: number): string {
    const res = parseLookupResult(b64uDecode(lookupB64));
    const sth = this.sth({ treeSize: res.sth.head.treeSize, root: res.sth.head.root, timestamp }, true);
    return b64uEncode(createLookupResult(this.logSk, { leafBytes: res.leafBytes, leafIndex: res.leafIndex, sth, inclusion: res.inclusion, statement: res.statement }).bytes);
  }

  /**
   * A forked tree of `size` leaves whose last leaf logs `statement` for the label: the other leaves
   * are filler, so its root differs from the real tree's of the same size. Returns the lookup of that
   * leaf, and the tree's leaves (for consistency proofs within the fork).
   */
  fork(size: number, leaf: { type: 1 | 2; label: Uint8Array; version: number; statement: Uint8Array }, opts: { cosign: boolean; timestamp: number }): { lookup: LookupResult; leaves: Uint8Array[]; sth: SignedTreeHead } {
    const leaves: Uint8Array[] = [];
    for (let i = 0; i < size - 1; i++) leaves.push(encodeKtLeaf({ type: 1, label: randomBytes(32), version: 1, logTime: opts.timestamp, valueHash: randomBytes(32) }));
    const leafBytes = encodeKtLeaf({ ...leaf, logTime: opts.timestamp, valueHash: sha256(leaf.statement) });
    leaves.push(leafBytes);
    const sth = this.sth({ treeSize: size, root: merkleRoot(leaves), timestamp: opts.timestamp }, opts.cosign);
    const lookup = createLookupResult(this.logSk, { leafBytes, leafIndex: size - 1, sth, inclusion: inclusionProof(size - 1, leaves), statement: leaf.statement });
    return { lookup, leaves, sth };
  }

  static consistency(first: number, leaves: Uint8Array[]): Uint8Array {
    return encodeConsistencyProof({ firstSize: first, secondSize: leaves.length, path: consistencyProof(first, leaves) });
  }
}

import { Inject, Injectable } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  b64uDecode,
  b64uEncode,
  createLookupResult,
  hexEncode,
  parseCosignature,
  parseSth,
  withCosignatures,
  COSIGNATURE_BYTES,
  type Cosignature,
  type SignedTreeHead,
} from '@umbra/crypto';
import {
  KT_LIMITS,
  type KtConfigResponse,
  type KtConsistencyQuery,
  type KtConsistencyResponse,
  type KtLeavesQuery,
  type KtLeavesResponse,
  type KtLookupQuery,
  type KtLookupResponse,
  type KtMonitorQuery,
  type KtMonitorResponse,
  type KtSthResponse,
} from '@umbra/protocol';
import { APP_CONFIG, ApiError, RateLimiter, type AppConfig } from '@umbra/server';
import { KT_KEYS, type KtKeys } from './kt-keys';
import { KtProofsService } from './kt-proofs.service';
import { KtRepository, type LeafRow, type SthRow } from './kt.repository';

const MINUTE = 60_000;
const NO_STH_RETRY_S = 2;
/** Signed LookupResults kept for the served STH (about 1 KB each). */
const RESULT_CACHE_ENTRIES = 4096;

/** The log's read side: tree heads, proofs, lookups and raw leaves (PROTOCOL.md §12). */
@Injectable()
export class KtService {
  private cached: { id: number; cosigners: number; sth: SignedTreeHead } | undefined;
  private readonly results = new Map<string, Uint8Array>();

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(KT_KEYS) private readonly keys: KtKeys,
    @Inject(KtRepository) private readonly repo: KtRepository,
    @Inject(KtProofsService) private readonly proofs: KtProofsService,
    @Inject(RateLimiter) private readonly limiter: RateLimiter,
  ) {}

  trustConfig(): KtConfigResponse {
    return {
      logPublicKey: hexEncode(this.keys.logPk),
      witnesses: this.keys.witnesses.map((w) => ({ publicKey: hexEncode(w.publicKey) })),
      quorum: this.keys.quorum,
      mmdMs: this.config.KT_MMD_MS,
      maxSthAgeMs: KT_LIMITS.MAX_STH_AGE_MS,
    };
  }

  async sth(): Promise<KtSthResponse> {
    return { sth: b64uEncode((await this.served()).bytes) };
  }

  async consistency(ip: string, q: KtConsistencyQuery): Promise<KtConsistencyResponse> {
    await this.limit(ip);
    const sth = await this.served();
    if (q.second > sth.head.treeSize) throw new ApiError('VALIDATION_FAILED', `second is past the current tree size ${sth.head.treeSize}`, { treeSize: sth.head.treeSize });
    return { proof: b64uEncode(await this.proofs.consistency(q.first, q.second)) };
  }

  /** Found or not, the answer takes at least KT_LOOKUP_FLOOR_MS (after the rate limit). */
  async lookup(ip: string, q: KtLookupQuery): Promise<KtLookupResponse> {
    await this.limit(ip);
    const started = performance.now();
    try {
      const sth = await this.served();
      const label = b64uDecode(q.label);
      const leaf = await this.repo.latestLeaf(q.type as 1 | 2, label, sth.head.treeSize);
      if (!leaf) throw new ApiError('KT_LABEL_NOT_FOUND', 'no leaf for this label in the current tree');
      return { result: b64uEncode(await this.result(leaf, sth)) };
    } finally {
      const left = this.config.KT_LOOKUP_FLOOR_MS - (performance.now() - started);
      if (left > 0) await sleep(left);
    }
  }

  async monitor(ip: string, q: KtMonitorQuery): Promise<KtMonitorResponse> {
    await this.limit(ip);
    const sth = await this.served();
    const leaves = await this.repo.leavesOfLabel(q.type as 1 | 2, b64uDecode(q.label), q.since, sth.head.treeSize, KT_LIMITS.MONITOR_MAX_RESULTS);
    // Every result costs a signature: a full page counts as several reads.
    for (let n = KT_LIMITS.MONITOR_RESULTS_PER_HIT; n < leaves.length; n += KT_LIMITS.MONITOR_RESULTS_PER_HIT) await this.limit(ip);
    const results: string[] = [];
    for (const leaf of leaves) results.push(b64uEncode(await this.result(leaf, sth)));
    return { results, sth: b64uEncode(sth.bytes) };
  }

  async leaves(ip: string, q: KtLeavesQuery): Promise<KtLeavesResponse> {
    await this.limit(ip);
    const sth = await this.served();
    const rows = await this.repo.leaves(q.start, sth.head.treeSize, q.limit);
    return {
      leaves: rows.map((r) => ({ index: r.index, leaf: b64uEncode(r.leaf), statement: b64uEncode(r.statement) })),
      treeSize: sth.head.treeSize,
    };
  }

  /**
   * The LookupResult of a leaf under `sth`. Results are cached per (STH, leaf index) while that STH is
   * the served one, so repeated lookups and monitor pages cost no new signature.
   */
  private async result(leaf: LeafRow, sth: SignedTreeHead): Promise<Uint8Array> {
    const key = `${sth.head.treeSize}:${sth.head.timestamp}:${sth.cosignatures.length}:${Buffer.from(sth.head.root).toString('hex')}:${leaf.index}`;
    const hit = this.results.get(key);
    if (hit) return hit;
    const inclusion = await this.proofs.inclusion(leaf.index, sth.head.treeSize);
    const bytes = createLookupResult(this.keys.logSk, { leafBytes: leaf.leaf, leafIndex: leaf.index, sth, inclusion, statement: leaf.statement }).bytes;
    if (this.results.size >= RESULT_CACHE_ENTRIES) this.results.delete(this.results.keys().next().value!);
    this.results.set(key, bytes);
    return bytes;
  }

  private limit(ip: string): Promise<void> {
    return this.limiter.hit('kt-ip', ip, this.config.RATE_LIMIT_KT_LOOKUP_PER_IP_PER_MINUTE, MINUTE);
  }

  /** The newest STH with the witness quorum; 503 UNAVAILABLE until there is one. */
  private async served(): Promise<SignedTreeHead> {
    const row = await this.repo.servedSth(this.keys.logId, this.keys.quorum);
    if (!row) throw new ApiError('UNAVAILABLE', 'no tree head with the witness quorum yet; try again shortly', { retryAfterS: NO_STH_RETRY_S });
    if (this.cached?.id === row.id && this.cached.cosigners === row.cosigners) return this.cached.sth;
    const sth = toSth(row);
    // A new served head: results under the old one are not handed out again.
    if (this.cached?.id !== row.id) this.results.clear();
    this.cached = { id: row.id, cosigners: row.cosigners, sth };
    return sth;
  }
}

function toSth(row: SthRow): SignedTreeHead {
  const cos: Cosignature[] = [];
  for (let i = 0; i + COSIGNATURE_BYTES <= row.cosignatures.length; i += COSIGNATURE_BYTES) cos.push(parseCosignature(row.cosignatures.subarray(i, i + COSIGNATURE_BYTES)));
  return withCosignatures(parseSth(row.sth), cos);
}

import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import {
  ascii,
  concatBytes,
  createSth,
  encodeCosignature,
  encodeKtLeaf,
  parseCosignature,
  parseSth,
  sha256,
  taggedHash,
  verifyCosignature,
  COSIGNATURE_BYTES,
  type Cosignature,
} from '@umbra/crypto';
import { APP_CONFIG, LOGGER, Metrics, PeriodicTask, type AppConfig, type Logger } from '@umbra/server';
import { KT_KEYS, type KtKeys } from './kt-keys';
import { KtProofsService } from './kt-proofs.service';
import { appendLeaves, frontierRefs, leafHash, refKey, rootOf } from './kt-tree';
import { KtWitnessClient } from './kt-witness.client';
import { KT_PUSH_LOCK, KT_SEQUENCER_LOCK, KtRepository, type LeafRow, type PendingStatement } from './kt.repository';

export interface SequenceResult {
  /** False when another instance held the sequencer lock. */
  ran: boolean;
  appended: number;
  treeSize: number;
  sthCreated: boolean;
}

function splitCosignatures(bytes: Buffer): Cosignature[] {
  const out: Cosignature[] = [];
  for (let i = 0; i + COSIGNATURE_BYTES <= bytes.length; i += COSIGNATURE_BYTES) out.push(parseCosignature(bytes.subarray(i, i + COSIGNATURE_BYTES)));
  return out;
}

/**
 * The log's single writer (PROTOCOL.md §12). Every instance runs the tick; a transaction-level
 * advisory lock lets exactly one sequence at a time, so two instances continue one tree and a
 * restart picks up where the tables are. Each tick: append pending statements as leaves (with every
 * subtree node that becomes complete), sign an STH when the tree grew or the last one is
 * KT_STH_INTERVAL_MS old, all in one transaction; then, under a second lock, push the newest STH to
 * the witnesses that have not cosigned it and store their cosignatures. Only STHs with the quorum
 * are served, and nothing is pushed before it is committed (a witness never cosigns a head the log
 * could lose).
 */
@Injectable()
export class KtSequencerService implements OnModuleInit, OnApplicationShutdown {
  private readonly task: PeriodicTask<void>;
  private readonly witnessClient: KtWitnessClient;
  private sampledAt = 0;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(Metrics) private readonly metrics: Metrics,
    @Inject(KT_KEYS) private readonly keys: KtKeys,
    @Inject(KtRepository) private readonly repo: KtRepository,
    @Inject(KtProofsService) private readonly proofs: KtProofsService,
  ) {
    this.witnessClient = new KtWitnessClient(config.KT_WITNESS_TIMEOUT_MS, logger, metrics);
    this.task = new PeriodicTask(() => this.tick(), config.KT_SEQUENCE_INTERVAL_MS, (err) => logger.error({ err: String(err) }, 'kt sequencer tick failed'));
  }

  /**
   * Wall-clock time, not the injectable Clock that tests move: log times and STH timestamps are checked
   * by witnesses and clients against their own clocks, and tests share one log on one database.
   */
  private now(): number {
    return Date.now();
  }

  onModuleInit(): void {
    this.task.start();
    void this.task.run().catch((err: unknown) => this.logger.error({ err: String(err) }, 'kt sequencer tick failed'));
  }

  async onApplicationShutdown(): Promise<void> {
    await this.task.stop();
  }

  /** One full tick (tests and the bench call it directly). */
  async tick(): Promise<void> {
    const batch = this.config.KT_SEQUENCE_BATCH;
    for (let i = 0; i < 20; i++) {
      const r = await this.sequence();
      if (!r.ran || r.appended < batch) break;
    }
    await this.pushToWitnesses();
    await this.sampleMetrics();
  }

  async sequence(): Promise<SequenceResult> {
    const waits: number[] = [];
    const result = await this.repo.withLock(KT_SEQUENCER_LOCK, async (w) => {
      const pending = await w.pending(this.config.KT_SEQUENCE_BATCH);
      let size = await w.treeSize();
      const refs = frontierRefs(size);
      const have = await w.nodes(refs);
      let frontier = refs.map((r) => {
        const h = have.get(refKey(r));
        if (!h) throw new Error(`kt tree node ${refKey(r)} missing at size ${size}`);
        return h;
      });
      if (pending.length > 0) {
        const logTime = this.now();
        const leaves = pending.map((p, i) => this.leafOf(p, size + i, logTime));
        const out = appendLeaves(size, frontier, leaves.map((l) => leafHash(l.leaf)));
        await w.append(leaves, out.nodes, pending.map((p) => p.id));
        frontier = out.frontier;
        size = out.size;
        waits.push(...pending.map((p) => p.waitedS));
      }
      const latest = await w.latestSth(this.keys.logId);
      const now = this.now();
      let sthCreated = false;
      if (!latest || latest.treeSize !== size || now - latest.timestamp >= this.config.KT_STH_INTERVAL_MS) {
        const timestamp = now;
        const sth = createSth(this.keys.logSk, { logPk: this.keys.logPk, treeSize: size, timestamp, root: rootOf(frontier) });
        await w.insertSth({ logId: this.keys.logId, treeSize: size, timestamp, root: sth.head.root, sth: sth.bytes });
        sthCreated = true;
      }
      return { appended: pending.length, treeSize: size, sthCreated };
    });
    if (!result.ran) return { ran: false, appended: 0, treeSize: 0, sthCreated: false };
    for (const s of waits) this.metrics.ktInclusionLatency.observe(s);
    this.metrics.ktTreeSize.set(result.value.treeSize);
    if (result.value.appended > 0) this.logger.info({ event: 'kt.sequenced', appended: result.value.appended, treeSize: result.value.treeSize }, 'kt leaves appended');
    return { ran: true, ...result.value };
  }

  /** Asks every witness that has not cosigned the newest STH for its cosignature; stores what comes back. */
  async pushToWitnesses(): Promise<number> {
    if (this.keys.witnesses.length === 0) return 0;
    const r = await this.repo.withLock(KT_PUSH_LOCK, async (w) => {
      const row = await w.latestSth(this.keys.logId);
      if (!row) return 0;
      const sth = parseSth(row.sth);
      const have = splitCosignatures(row.cosignatures).filter((c) => this.keys.witnesses.some((x) => verifyCosignature(sth.tbs, c, x.publicKey)));
      const missing = this.keys.witnesses.filter((x) => !have.some((c) => Buffer.from(c.witnessId).equals(Buffer.from(x.id))));
      if (missing.length === 0) return have.length;
      const now = this.now();
      const outcomes = await Promise.all(missing.map((x) => this.witnessClient.push(x, sth, (old) => this.proofs.consistency(old, sth.head.treeSize), now)));
      const fresh = outcomes.flatMap((o) => (o.ok ? [o.cosignature] : []));
      if (fresh.length === 0) return have.length;
      const all = [...have, ...fresh].slice(0, 255);
      await w.setCosignatures(row.id, concatBytes(...all.map(encodeCosignature)), all.length);
      return all.length;
    });
    return r.ran ? r.value : 0;
  }

  private async sampleMetrics(): Promise<void> {
    // At most once a second, however short KT_SEQUENCE_INTERVAL_MS is.
    const now = this.now();
    if (Math.abs(now - this.sampledAt) < 1000) return;
    this.sampledAt = now;
    const [backlog, served] = await Promise.all([this.repo.backlog(), this.repo.servedSth(this.keys.logId, this.keys.quorum)]);
    this.metrics.ktTreeSize.set(backlog.treeSize);
    this.metrics.ktPending.set(backlog.pending);
    if (served) this.metrics.ktSthAge.set(Math.max(0, (this.now() - served.timestamp) / 1000));
    if (backlog.oldestPendingS * 1000 > this.config.KT_MMD_MS) {
      this.logger.error({ event: 'kt.mmd-exceeded', oldestPendingS: Math.round(backlog.oldestPendingS), pending: backlog.pending }, 'a statement waited longer than the MMD');
    }
  }

  private leafOf(p: PendingStatement, index: number, logTime: number): LeafRow {
    // The handle in the row is the canonical one the claim was verified with (AccountsService).
    const label = p.type === 1 ? p.accountId : Buffer.from(taggedHash('umbra/v1/kt-handle', ascii(p.handle ?? '')));
    const leaf = Buffer.from(encodeKtLeaf({ type: p.type, label, version: p.version, logTime, valueHash: sha256(p.statement) }));
    return { index, type: p.type, label, version: p.version, logTime, leaf, statement: p.statement };
  }
}

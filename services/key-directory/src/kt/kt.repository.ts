import type { DataSource, EntityManager } from 'typeorm';
import { refKey, type NodeRef, type TreeNode } from './kt-tree';

/** Transaction-level advisory locks: one sequencer, and one witness pusher, across every instance. */
export const KT_SEQUENCER_LOCK = 0x6b74_5f73_6571; // "kt_seq"
export const KT_PUSH_LOCK = 0x6b74_5f70_7368; // "kt_psh"

export interface PendingStatement {
  id: string;
  type: 1 | 2;
  accountId: Buffer;
  handle: string | null;
  version: number;
  statement: Buffer;
  /** Seconds since it was accepted (database clock). */
  waitedS: number;
}

export interface LeafRow {
  index: number;
  type: 1 | 2;
  label: Buffer;
  version: number;
  logTime: number;
  leaf: Buffer;
  statement: Buffer;
}

export interface SthRow {
  id: number;
  treeSize: number;
  timestamp: number;
  root: Buffer;
  /** The log-signed STH without cosignatures. */
  sth: Buffer;
  /** Concatenated 104-byte cosignature triples. */
  cosignatures: Buffer;
  cosigners: number;
}

const STH_COLUMNS = `id::float8 AS id, tree_size::float8 AS "treeSize", "timestamp"::float8 AS "timestamp", root, sth, cosignatures, cosigners`;
const LEAF_COLUMNS = `idx::float8 AS index, type, label, version::float8 AS version, log_time::float8 AS "logTime", leaf, statement`;

function b(x: Uint8Array): Buffer {
  return Buffer.isBuffer(x) ? x : Buffer.from(x.buffer, x.byteOffset, x.byteLength);
}

async function nodesIn(q: { query: (sql: string, params?: unknown[]) => Promise<unknown> }, refs: NodeRef[]): Promise<Map<string, Buffer>> {
  if (refs.length === 0) return new Map();
  const rows = (await q.query(
    `SELECT n.level, n.idx::float8 AS index, n.hash FROM kt_nodes n
     JOIN unnest($1::smallint[], $2::bigint[]) AS r(level, idx) ON n.level = r.level AND n.idx = r.idx`,
    [refs.map((r) => r.level), refs.map((r) => r.index)],
  )) as { level: number; index: number; hash: Buffer }[];
  return new Map(rows.map((r) => [refKey(r), r.hash]));
}

/** Queries of the sequencer, inside its locked transaction. */
export class KtWriter {
  constructor(private readonly tx: EntityManager) {}

  async pending(limit: number): Promise<PendingStatement[]> {
    const rows: (Omit<PendingStatement, 'id'> & { id: string })[] = await this.tx.query(
      `SELECT id::text AS id, type, account_id AS "accountId", handle, version::float8 AS version, statement,
              extract(epoch FROM clock_timestamp() - enqueued_at)::float8 AS "waitedS"
       FROM kt_pending ORDER BY id LIMIT $1`,
      [limit],
    );
    return rows;
  }

  async treeSize(): Promise<number> {
    const rows: { n: number }[] = await this.tx.query(`SELECT coalesce(max(idx) + 1, 0)::float8 AS n FROM kt_leaves`);
    return rows[0]!.n;
  }

  nodes(refs: NodeRef[]): Promise<Map<string, Buffer>> {
    return nodesIn(this.tx, refs);
  }

  async append(leaves: LeafRow[], nodes: TreeNode[], pendingIds: string[]): Promise<void> {
    if (leaves.length > 0) {
      await this.tx.query(
        `INSERT INTO kt_leaves (idx, type, label, version, log_time, leaf, statement)
         SELECT * FROM unnest($1::bigint[], $2::smallint[], $3::bytea[], $4::bigint[], $5::bigint[], $6::bytea[], $7::bytea[])`,
        [leaves.map((l) => l.index), leaves.map((l) => l.type), leaves.map((l) => l.label), leaves.map((l) => l.version), leaves.map((l) => l.logTime), leaves.map((l) => l.leaf), leaves.map((l) => l.statement)],
      );
    }
    if (nodes.length > 0) {
      await this.tx.query(`INSERT INTO kt_nodes (level, idx, hash) SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[])`, [
        nodes.map((n) => n.level),
        nodes.map((n) => n.index),
        nodes.map((n) => n.hash),
      ]);
    }
    if (pendingIds.length > 0) await this.tx.query(`DELETE FROM kt_pending WHERE id = ANY($1::bigint[])`, [pendingIds]);
  }

  /** The newest STH this log key signed (other keys may share the tree: tests run several logs on one database). */
  async latestSth(logId: Uint8Array): Promise<SthRow | undefined> {
    const rows: SthRow[] = await this.tx.query(`SELECT ${STH_COLUMNS} FROM kt_sths WHERE log_id = $1 ORDER BY id DESC LIMIT 1`, [b(logId)]);
    return rows[0];
  }

  async insertSth(s: { logId: Uint8Array; treeSize: number; timestamp: number; root: Uint8Array; sth: Uint8Array; cosignatures?: Uint8Array; cosigners?: number }): Promise<number> {
    const rows: { id: number }[] = await this.tx.query(
      `INSERT INTO kt_sths (log_id, tree_size, "timestamp", root, sth, cosignatures, cosigners) VALUES ($7, $1, $2, $3, $4, $5, $6) RETURNING id::float8 AS id`,
      [s.treeSize, s.timestamp, b(s.root), b(s.sth), b(s.cosignatures ?? new Uint8Array(0)), s.cosigners ?? 0, b(s.logId)],
    );
    return rows[0]!.id;
  }

  async setCosignatures(id: number, cosignatures: Uint8Array, cosigners: number): Promise<void> {
    await this.tx.query(`UPDATE kt_sths SET cosignatures = $2, cosigners = $3 WHERE id = $1`, [id, b(cosignatures), cosigners]);
  }
}

/** The key-transparency log's tables (migration 1764000700000). */
export class KtRepository {
  constructor(private readonly ds: DataSource) {}

  /**
   * Runs `fn` in a transaction holding advisory lock `key`; undefined (without running it) when another
   * session holds it. The lock ends with the transaction, so a crashed holder never blocks the log.
   */
  async withLock<T>(key: number, fn: (w: KtWriter) => Promise<T>): Promise<{ ran: true; value: T } | { ran: false }> {
    return this.ds.transaction(async (tx) => {
      const got: { ok: boolean }[] = await tx.query(`SELECT pg_try_advisory_xact_lock($1::bigint) AS ok`, [key]);
      if (!got[0]?.ok) return { ran: false as const };
      return { ran: true as const, value: await fn(new KtWriter(tx)) };
    });
  }

  /** The newest STH of this log key with at least `quorum` cosignatures. */
  async servedSth(logId: Uint8Array, quorum: number): Promise<SthRow | undefined> {
    const rows: SthRow[] = await this.ds.query(
      `SELECT ${STH_COLUMNS} FROM kt_sths WHERE log_id = $1 AND cosigners >= $2 ORDER BY id DESC LIMIT 1`,
      [b(logId), quorum],
    );
    return rows[0];
  }

  async latestLeaf(type: 1 | 2, label: Uint8Array, below: number): Promise<LeafRow | undefined> {
    const rows: LeafRow[] = await this.ds.query(
      `SELECT ${LEAF_COLUMNS} FROM kt_leaves WHERE label = $1 AND type = $2 AND idx < $3 ORDER BY idx DESC LIMIT 1`,
      [b(label), type, below],
    );
    return rows[0];
  }

  async leavesOfLabel(type: 1 | 2, label: Uint8Array, since: number, below: number, limit: number): Promise<LeafRow[]> {
    return this.ds.query(
      `SELECT ${LEAF_COLUMNS} FROM kt_leaves WHERE label = $1 AND type = $2 AND idx >= $3 AND idx < $4 ORDER BY idx LIMIT $5`,
      [b(label), type, since, below, limit],
    );
  }

  async leaves(start: number, below: number, limit: number): Promise<LeafRow[]> {
    return this.ds.query(`SELECT ${LEAF_COLUMNS} FROM kt_leaves WHERE idx >= $1 AND idx < $2 ORDER BY idx LIMIT $3`, [start, below, limit]);
  }

  nodes(refs: NodeRef[]): Promise<Map<string, Buffer>> {
    return nodesIn(this.ds, refs);
  }

  /** Tree size, statements waiting and the oldest one's age in seconds (for metrics). */
  async backlog(): Promise<{ treeSize: number; pending: number; oldestPendingS: number }> {
    const rows: { treeSize: number; pending: number; oldestPendingS: number | null }[] = await this.ds.query(
      `SELECT (SELECT coalesce(max(idx) + 1, 0) FROM kt_leaves)::float8 AS "treeSize",
              (SELECT count(*) FROM kt_pending)::float8 AS pending,
              (SELECT extract(epoch FROM clock_timestamp() - min(enqueued_at)) FROM kt_pending)::float8 AS "oldestPendingS"`,
    );
    const r = rows[0]!;
    return { treeSize: r.treeSize, pending: r.pending, oldestPendingS: r.oldestPendingS ?? 0 };
  }
}

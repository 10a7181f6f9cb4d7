import type { DataSource, EntityManager } from 'typeorm';
import { affectedRows, returnedRows } from './types';

export const AttachmentState = { PENDING: 1, COMPLETE: 2 } as const;
export type AttachmentStateValue = (typeof AttachmentState)[keyof typeof AttachmentState];

export interface AttachmentRow {
  id: Buffer;
  accountId: Buffer;
  size: number;
  state: AttachmentStateValue;
  uploadId: string | null;
  partSize: number;
  partCount: number;
  createdAt: number;
  uploadDeadline: number;
  expiresAt: number;
  completedAt: number | null;
}

export interface NewAttachment {
  id: Uint8Array;
  size: number;
  uploadId: string | null;
  partSize: number;
  partCount: number;
  createdAt: number;
  uploadDeadline: number;
  expiresAt: number;
}

export interface AttachmentQuota {
  bytesPerDay: number;
  maxPending: number;
}

export type CreateOutcome = 'created' | 'quota-exceeded' | 'too-many-pending';

const DAY_MS = 86_400_000;
const COLUMNS = `id, account_id AS "accountId", size, state, upload_id AS "uploadId", part_size AS "partSize", part_count AS "partCount",
  created_at AS "createdAt", upload_deadline AS "uploadDeadline", expires_at AS "expiresAt", completed_at AS "completedAt"`;
const buf = (x: Uint8Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);
// Advisory-lock namespace of per-account attachment quotas ("atch").
const QUOTA_LOCK = 0x61746368;

/** Attachment rows. Queries that act for a user take the owning account; the reaper's act for the system. */
export class AttachmentsRepository {
  constructor(private readonly ds: DataSource) {}

  /**
   * Inserts a pending attachment for `owner` unless that breaks a quota: the bytes declared today
   * (UTC) and the number of unfinished uploads. Serialised per account, so concurrent requests
   * cannot overshoot.
   */
  async createWithinQuota(owner: Uint8Array, row: NewAttachment, quota: AttachmentQuota): Promise<CreateOutcome> {
    const a = buf(owner);
    return this.ds.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1, hashtext(encode($2::bytea, $3)))', [QUOTA_LOCK, a, 'hex']);
      const [pending] = (await tx.query('SELECT count(*)::int AS n FROM attachments WHERE account_id = $1 AND state = $2', [a, AttachmentState.PENDING])) as { n: number }[];
      if ((pending?.n ?? 0) >= quota.maxPending) return 'too-many-pending';
      const day = Math.floor(row.createdAt / DAY_MS);
      const used = (await tx.query(
        `INSERT INTO attachment_usage AS u (account_id, day, bytes) VALUES ($1, $2, $3)
         ON CONFLICT (account_id, day) DO UPDATE SET bytes = u.bytes + EXCLUDED.bytes WHERE u.bytes + EXCLUDED.bytes <= $4
         RETURNING bytes`,
        [a, day, row.size, quota.bytesPerDay],
      )) as { bytes: number }[];
      if (used.length === 0 || (used[0]?.bytes ?? 0) > quota.bytesPerDay) {
        // A fresh row is inserted unconditionally: undo it by rolling back.
        throw new QuotaRollback();
      }
      await tx.query(
        `INSERT INTO attachments (id, account_id, size, state, upload_id, part_size, part_count, created_at, upload_deadline, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
        [buf(row.id), a, row.size, AttachmentState.PENDING, row.uploadId, row.partSize, row.partCount, row.createdAt, row.uploadDeadline, row.expiresAt],
      );
      return 'created' as const;
    }).catch((err: unknown) => {
      if (err instanceof QuotaRollback) return 'quota-exceeded' as const;
      throw err;
    });
  }

  /** Any attachment by id (callers check the owner before acting). */
  async find(id: Uint8Array): Promise<AttachmentRow | undefined> {
    const rows = (await this.ds.query(`SELECT ${COLUMNS} FROM attachments WHERE id = $1`, [buf(id)])) as AttachmentRow[];
    return rows[0];
  }

  /** A completed attachment that has not expired: what any authenticated account may download. */
  async findDownloadable(id: Uint8Array, now: number): Promise<AttachmentRow | undefined> {
    const rows = (await this.ds.query(`SELECT ${COLUMNS} FROM attachments WHERE id = $1 AND expires_at > $2`, [buf(id), now])) as AttachmentRow[];
    return rows[0];
  }

  /** Marks `owner`'s pending upload complete; false when it is gone (aborted or reaped meanwhile). */
  async markComplete(owner: Uint8Array, id: Uint8Array, now: number): Promise<boolean> {
    const res = await this.ds.query(
      `UPDATE attachments SET state = $3, completed_at = $4, upload_id = NULL WHERE id = $1 AND account_id = $2 AND state = $5`,
      [buf(id), buf(owner), AttachmentState.COMPLETE, now, AttachmentState.PENDING],
    );
    return affectedRows(res) === 1;
  }

  /** Deletes one of `owner`'s attachments and returns it, or undefined when it is not theirs or gone. */
  async deleteOwned(owner: Uint8Array, id: Uint8Array): Promise<AttachmentRow | undefined> {
    const res = await this.ds.query(`DELETE FROM attachments WHERE id = $1 AND account_id = $2 RETURNING ${COLUMNS}`, [buf(id), buf(owner)]);
    return returnedRows<AttachmentRow>(res)[0];
  }

  /**
   * Locks up to `limit` rows that are due (expired, or unfinished past their upload deadline),
   * lets `cleanup` remove their bytes, then deletes them, in one transaction: rows locked by
   * another instance are skipped, and a failed cleanup leaves the rows for the next pass.
   */
  async reapDue(now: number, limit: number, cleanup: (rows: AttachmentRow[]) => Promise<void>): Promise<AttachmentRow[]> {
    return this.lockedDelete(
      `SELECT ${COLUMNS} FROM attachments WHERE expires_at <= $1 OR (state = ${AttachmentState.PENDING} AND upload_deadline <= $1)
       ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED`,
      [now, limit],
      cleanup,
    );
  }

  /**
   * The same for explicit ids of `owner`'s attachments (a vanished message's own uploads): a message
   * never deletes a file someone else uploaded, such as one it forwards.
   */
  async reapOwnedIds(owner: Uint8Array, ids: Uint8Array[], cleanup: (rows: AttachmentRow[]) => Promise<void>): Promise<AttachmentRow[]> {
    if (ids.length === 0) return [];
    return this.lockedDelete(
      `SELECT ${COLUMNS} FROM attachments WHERE account_id = $1 AND id = ANY($2::bytea[]) FOR UPDATE SKIP LOCKED`,
      [buf(owner), ids.map(buf)],
      cleanup,
    );
  }

  /**
   * Adds bytes the store holds beyond what `owner` declared (a store that did not enforce the signed
   * length) to today's usage: the quota counts stored bytes, even of an upload that is then refused.
   */
  async chargeUsage(owner: Uint8Array, now: number, bytes: number): Promise<void> {
    if (bytes <= 0) return;
    await this.ds.query(
      `INSERT INTO attachment_usage AS u (account_id, day, bytes) VALUES ($1, $2, $3)
       ON CONFLICT (account_id, day) DO UPDATE SET bytes = u.bytes + EXCLUDED.bytes`,
      [buf(owner), Math.floor(now / DAY_MS), bytes],
    );
  }

  /** Bytes counted against `owner`'s quota for the UTC day of `now`. */
  async bytesUsedToday(owner: Uint8Array, now: number): Promise<number> {
    const rows = (await this.ds.query('SELECT bytes FROM attachment_usage WHERE account_id = $1 AND day = $2', [buf(owner), Math.floor(now / DAY_MS)])) as { bytes: string | number }[];
    return Number(rows[0]?.bytes ?? 0);
  }

  /**
   * Makes these of `owner`'s attachments due now (a vanished message's own uploads): no longer
   * downloadable, and whatever reaps due rows deletes them if deleting their bytes fails now.
   */
  async markDue(owner: Uint8Array, ids: Uint8Array[], now: number): Promise<void> {
    if (ids.length === 0) return;
    await this.ds.query('UPDATE attachments SET expires_at = $3 WHERE account_id = $1 AND id = ANY($2::bytea[]) AND expires_at > $3', [buf(owner), ids.map(buf), now]);
  }

  /** Quota rows older than yesterday. */
  async deleteOldUsage(now: number): Promise<number> {
    return affectedRows(await this.ds.query('DELETE FROM attachment_usage WHERE day < $1', [Math.floor(now / DAY_MS) - 1]));
  }

  private async lockedDelete(select: string, params: unknown[], cleanup: (rows: AttachmentRow[]) => Promise<void>): Promise<AttachmentRow[]> {
    return this.ds.transaction(async (tx: EntityManager) => {
      const rows = (await tx.query(select, params)) as AttachmentRow[];
      if (rows.length === 0) return rows;
      await cleanup(rows);
      await tx.query('DELETE FROM attachments WHERE id = ANY($1::bytea[])', [rows.map((r) => r.id)]);
      return rows;
    });
  }
}

class QuotaRollback extends Error {}

import { b64uDecode, b64uEncode } from '@umbra/crypto';
import type { AttachmentRow, AttachmentsRepository } from '../database/attachments.repository';
import type { Logger } from '../logging/logger';
import type { Metrics } from '../metrics/metrics';
import type { ObjectStore } from '../storage/object-store';

/** Object key of an attachment's blob. */
export function attachmentObjectKey(id: Uint8Array): string {
  return `att/${b64uEncode(id)}`;
}

/** Removes stored bytes at most this many objects at a time. */
const DELETE_CONCURRENCY = 8;

/**
 * Deletes attachments with their stored bytes: the ones due (expired, or unfinished past their
 * upload deadline) in bounded batches, and explicit ids (a vanished message's attachments). Safe
 * with several instances running it (rows are locked with SKIP LOCKED while their objects are
 * deleted); a row is deleted only after its bytes are.
 */
export class AttachmentReaper {
  constructor(
    private readonly attachments: AttachmentsRepository,
    private readonly store: ObjectStore,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
  ) {}

  /** One batch of at most `limit` due attachments; returns how many were deleted. */
  async reapAttachments(now: number, limit: number): Promise<number> {
    const rows = await this.attachments.reapDue(now, limit, (r) => this.removeBytes(r));
    for (const r of rows) this.metrics.attachmentUploads.inc({ event: r.expiresAt <= now ? 'expired' : 'abandoned' });
    if (rows.length > 0) this.metrics.sweptRows.inc({ table: 'attachments' }, rows.length);
    return rows.length;
  }

  /** Every due attachment, batch after batch; returns how many were deleted. */
  async reapAll(now: number, batch: number): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await this.reapAttachments(now, batch);
      total += n;
      if (n < batch) break;
    }
    await this.attachments.deleteOldUsage(now);
    if (total > 0) this.logger.info({ attachments: total }, 'reaped expired and abandoned attachments');
    return total;
  }

  /**
   * Deletes these attachments of `owner` (ids as issued: base64url) and their bytes. Ids of other
   * uploaders, unknown or malformed ids are ignored; returns how many were deleted. They are made
   * due first, so when the object store fails (logged, not thrown) the next reaping pass retries.
   */
  async deleteAttachments(owner: Uint8Array, ids: readonly string[], now: number): Promise<number> {
    const raw: Uint8Array[] = [];
    for (const id of ids) {
      try {
        const b = b64uDecode(id);
        if (b.length === 16) raw.push(b);
      } catch {
        // not an attachment id: nothing to delete
      }
    }
    if (raw.length === 0) return 0;
    await this.attachments.markDue(owner, raw, now);
    try {
      const rows = await this.attachments.reapOwnedIds(owner, raw, (r) => this.removeBytes(r));
      if (rows.length > 0) this.metrics.sweptRows.inc({ table: 'attachments' }, rows.length);
      return rows.length;
    } catch (err) {
      this.logger.warn({ attachments: raw.length, err: String(err) }, 'could not delete attachments now; the next reaping pass retries');
      return 0;
    }
  }

  /** Deletes the object (and aborts an unfinished multipart upload) of each row. */
  async removeBytes(rows: readonly AttachmentRow[]): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < rows.length) {
        const row = rows[next++]!;
        const key = attachmentObjectKey(row.id);
        if (row.uploadId) await this.store.abortMultipart(key, row.uploadId);
        await this.store.delete(key);
      }
    };
    await Promise.all(Array.from({ length: Math.min(DELETE_CONCURRENCY, rows.length) }, worker));
  }
}

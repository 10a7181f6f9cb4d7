import { randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { b64uDecode, b64uEncode } from '@umbra/crypto';
import {
  LIMITS,
  type AttachmentPartsResponse,
  type CompleteAttachmentResponse,
  type CreateAttachmentRequest,
  type CreateAttachmentResponse,
  type DownloadAttachmentResponse,
  type PartUrl,
} from '@umbra/protocol';
import {
  APP_CONFIG,
  ApiError,
  AttachmentReaper,
  AttachmentState,
  AttachmentsRepository,
  Clock,
  LOGGER,
  Metrics,
  ObjectStore,
  attachmentObjectKey,
  type AppConfig,
  type AttachmentRow,
  type AuthContext,
  type Logger,
  type StoredPart,
} from '@umbra/server';

/**
 * Attachment uploads (PROTOCOL.md §9). The server hands out pre-signed URLs and never sees blob
 * bytes; it checks sizes, quotas and ownership, and removes what is aborted, abandoned or expired.
 */
@Injectable()
export class AttachmentsService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(Clock) private readonly clock: Clock,
    @Inject(Metrics) private readonly metrics: Metrics,
    @Inject(AttachmentsRepository) private readonly attachments: AttachmentsRepository,
    @Inject(ObjectStore) private readonly store: ObjectStore,
    @Inject(AttachmentReaper) private readonly reaper: AttachmentReaper,
  ) {
    if (Math.ceil(config.ATTACHMENT_MAX_BYTES / config.ATTACHMENT_PART_BYTES) > LIMITS.MAX_ATTACHMENT_PARTS) {
      throw new Error(`ATTACHMENT_MAX_BYTES / ATTACHMENT_PART_BYTES exceeds ${LIMITS.MAX_ATTACHMENT_PARTS} parts`);
    }
  }

  async create(auth: AuthContext, req: CreateAttachmentRequest): Promise<CreateAttachmentResponse> {
    const c = this.config;
    if (req.size > c.ATTACHMENT_MAX_BYTES) throw new ApiError('ATTACHMENT_TOO_LARGE', `size above the ${c.ATTACHMENT_MAX_BYTES}-byte limit`, { max: c.ATTACHMENT_MAX_BYTES });
    const now = this.clock.now();
    const retentionEnd = now + c.MAX_RETENTION_S * 1000;
    if (req.expiresAt && req.expiresAt <= now) throw new ApiError('ALREADY_EXPIRED', 'expiresAt is in the past');
    const expiresAt = req.expiresAt ? Math.min(req.expiresAt, retentionEnd) : retentionEnd;
    const uploadDeadline = Math.min(now + c.ATTACHMENT_UPLOAD_TIMEOUT_S * 1000, expiresAt);
    // Every upload is an S3 multipart upload, small ones in a single part: completing it ends the
    // upload id, so no URL handed out can write to the object afterwards (a plain PUT URL could
    // overwrite the completed object until it expired).
    const partSize = req.size >= c.ATTACHMENT_MULTIPART_THRESHOLD_BYTES ? c.ATTACHMENT_PART_BYTES : req.size;
    const partCount = Math.ceil(req.size / partSize);
    const id = randomBytes(16);
    const key = attachmentObjectKey(id);
    const uploadId = await this.store.createMultipart(key);
    const outcome = await this.attachments.createWithinQuota(
      auth.accountId,
      { id, size: req.size, uploadId, partSize, partCount, createdAt: now, uploadDeadline, expiresAt },
      { bytesPerDay: c.ATTACHMENT_QUOTA_BYTES_PER_DAY, maxPending: c.ATTACHMENT_MAX_PENDING_UPLOADS },
    );
    if (outcome !== 'created') {
      await this.store.abortMultipart(key, uploadId);
      if (outcome === 'too-many-pending') throw new ApiError('TOO_MANY_PENDING_UPLOADS', `at most ${c.ATTACHMENT_MAX_PENDING_UPLOADS} unfinished uploads per account`);
      throw new ApiError('ATTACHMENT_QUOTA_EXCEEDED', `at most ${c.ATTACHMENT_QUOTA_BYTES_PER_DAY} bytes of attachments per account per day`);
    }
    this.metrics.attachmentUploads.inc({ event: 'started' });
    const row = { size: req.size, partSize, partCount, uploadDeadline };
    const ttl = this.urlTtl(row, now);
    const parts = await this.partUrls(key, uploadId, row, range(1, partCount), ttl);
    return { id: b64uEncode(id), size: req.size, expiresAt, uploadDeadline, upload: { kind: 'multipart', partSize, partCount, parts, urlExpiresAt: now + ttl * 1000 } };
  }

  async parts(auth: AuthContext, idText: string): Promise<AttachmentPartsResponse> {
    const row = await this.ownPending(auth, idText);
    const key = attachmentObjectKey(row.id);
    const now = this.clock.now();
    const ttl = this.urlTtl(row, now);
    const base = { id: idText, partSize: row.partSize, partCount: row.partCount, urlExpiresAt: now + ttl * 1000 };
    if (!row.uploadId) {
      // A single-PUT upload created before every upload became multipart.
      const stored = await this.store.size(key);
      const done = stored === row.size;
      return { ...base, kind: 'single', uploaded: done ? [{ partNumber: 1, size: stored, etag: '' }] : [], missing: done ? [] : [{ partNumber: 1, url: await this.store.presignPut(key, row.size, ttl) }] };
    }
    const uploaded = (await this.listParts(row)).filter((p) => p.partNumber <= row.partCount && p.size === expectedPartSize(row, p.partNumber));
    const have = new Set(uploaded.map((p) => p.partNumber));
    const missing = range(1, row.partCount).filter((n) => !have.has(n));
    return { ...base, kind: 'multipart', uploaded, missing: await this.partUrls(key, row.uploadId, row, missing, ttl) };
  }

  async complete(auth: AuthContext, idText: string): Promise<CompleteAttachmentResponse> {
    const row = await this.own(auth, idText);
    if (row.state === AttachmentState.COMPLETE) return { id: idText, size: row.size, expiresAt: row.expiresAt };
    this.checkDeadline(row);
    const key = attachmentObjectKey(row.id);
    // No upload id left: a completion that finished in the store but not here; the HEAD below decides.
    const parts = row.uploadId ? await this.listParts(row).catch((err: unknown) => (err instanceof ApiError && err.code === 'ATTACHMENT_NOT_FOUND' ? undefined : Promise.reject(err))) : undefined;
    if (row.uploadId && parts) {
      const have = new Set(parts.map((p) => p.partNumber));
      const missing = range(1, row.partCount).filter((n) => !have.has(n));
      if (missing.length > 0) throw new ApiError('UPLOAD_INCOMPLETE', `${missing.length} of ${row.partCount} parts are not uploaded`, { missing: missing.slice(0, 100) });
      const wrong = parts.filter((p) => p.partNumber > row.partCount || p.size !== expectedPartSize(row, p.partNumber));
      if (wrong.length > 0) await this.rejectSize(auth, row, parts.reduce((s, p) => s + p.size, 0));
      if (!(await this.store.completeMultipart(key, row.uploadId, parts))) throw new ApiError('UPLOAD_INCOMPLETE', 'a part changed while completing; try again');
    }
    // What the quota counts is what the store holds, whatever was declared or signed.
    const stored = await this.store.size(key);
    if (stored === undefined) throw new ApiError('UPLOAD_INCOMPLETE', 'nothing has been uploaded');
    if (stored !== row.size) await this.rejectSize(auth, row, stored);
    if (!(await this.attachments.markComplete(auth.accountId, row.id, this.clock.now()))) {
      // Aborted or reaped while completing: the bytes must not outlive the row.
      await this.store.delete(key);
      throw new ApiError('ATTACHMENT_NOT_FOUND', 'no such attachment');
    }
    this.metrics.attachmentUploads.inc({ event: 'completed' });
    this.metrics.attachmentBytesUploaded.inc(stored);
    return { id: idText, size: stored, expiresAt: row.expiresAt };
  }

  async remove(auth: AuthContext, idText: string): Promise<void> {
    const row = await this.own(auth, idText);
    await this.reaper.removeBytes([row]);
    if (await this.attachments.deleteOwned(auth.accountId, row.id)) this.metrics.attachmentUploads.inc({ event: 'aborted' });
  }

  async download(_auth: AuthContext, idText: string): Promise<DownloadAttachmentResponse> {
    const now = this.clock.now();
    const row = await this.attachments.findDownloadable(parseId(idText), now);
    if (!row) throw new ApiError('ATTACHMENT_NOT_FOUND', 'no such attachment');
    if (row.state !== AttachmentState.COMPLETE) throw new ApiError('ATTACHMENT_NOT_READY', 'the upload is not complete');
    const ttl = this.config.ATTACHMENT_DOWNLOAD_URL_TTL_S;
    const url = await this.store.presignGet(attachmentObjectKey(row.id), ttl);
    return { id: idText, size: row.size, url, urlExpiresAt: now + ttl * 1000, expiresAt: row.expiresAt };
  }

  private async own(auth: AuthContext, idText: string): Promise<AttachmentRow> {
    const row = await this.attachments.find(parseId(idText));
    if (!row || row.expiresAt <= this.clock.now()) throw new ApiError('ATTACHMENT_NOT_FOUND', 'no such attachment');
    if (!row.accountId.equals(auth.accountId)) throw new ApiError('NOT_UPLOADER', 'only the uploader may do this');
    return row;
  }

  private async ownPending(auth: AuthContext, idText: string): Promise<AttachmentRow> {
    const row = await this.own(auth, idText);
    if (row.state === AttachmentState.COMPLETE) throw new ApiError('ATTACHMENT_ALREADY_COMPLETE', 'the upload is already complete');
    this.checkDeadline(row);
    return row;
  }

  private checkDeadline(row: AttachmentRow): void {
    if (row.uploadDeadline <= this.clock.now()) throw new ApiError('ATTACHMENT_NOT_FOUND', 'the upload timed out');
  }

  /** The stored size differs from the declared one: the bytes and the attachment are deleted. */
  private async rejectSize(auth: AuthContext, row: AttachmentRow, stored: number): Promise<never> {
    await this.attachments.chargeUsage(auth.accountId, this.clock.now(), stored - row.size);
    await this.reaper.removeBytes([row]);
    await this.attachments.deleteOwned(auth.accountId, row.id);
    this.metrics.attachmentUploads.inc({ event: 'rejected' });
    this.logger.warn({ size: row.size, stored }, 'attachment upload refused: stored size differs from the declared size');
    throw new ApiError('UPLOAD_SIZE_MISMATCH', `stored ${stored} bytes, declared ${row.size}; the upload was deleted`, { declared: row.size, stored });
  }

  private async listParts(row: AttachmentRow): Promise<StoredPart[]> {
    try {
      return await this.store.listParts(attachmentObjectKey(row.id), row.uploadId!);
    } catch (err) {
      // NoSuchUpload: completed or aborted concurrently.
      if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) throw new ApiError('ATTACHMENT_NOT_FOUND', 'the upload is gone');
      throw err;
    }
  }

  /** Each part's URL signs that part's exact length: every part but the last is partSize bytes. */
  private async partUrls(key: string, uploadId: string, row: PartLayout, numbers: number[], ttl: number): Promise<PartUrl[]> {
    return Promise.all(numbers.map(async (partNumber) => ({ partNumber, url: await this.store.presignPart(key, uploadId, partNumber, expectedPartSize(row, partNumber), ttl) })));
  }

  /** Upload URL lifetime (s): the configured one, never past the upload's deadline. */
  private urlTtl(row: PartLayout, now: number): number {
    return Math.max(1, Math.min(this.config.ATTACHMENT_UPLOAD_URL_TTL_S, Math.floor((row.uploadDeadline - now) / 1000)));
  }
}

function parseId(idText: string): Uint8Array {
  return b64uDecode(idText);
}

type PartLayout = Pick<AttachmentRow, 'size' | 'partSize' | 'partCount' | 'uploadDeadline'>;

function expectedPartSize(row: PartLayout, n: number): number {
  return n < row.partCount ? row.partSize : row.size - row.partSize * (row.partCount - 1);
}

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
}

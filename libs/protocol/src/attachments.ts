import { z } from 'zod';
import { LIMITS } from './limits';
import { AttachmentIdSchema, TimestampMsSchema } from './schemas';

/** Attachments (PROTOCOL.md §9): the server stores opaque blobs; clients upload and download them with pre-signed URLs. */

export const AttachmentParamSchema = z.object({ id: AttachmentIdSchema }).strict();

export const CreateAttachmentRequestSchema = z
  .object({
    size: z
      .number()
      .int()
      .min(LIMITS.MIN_ATTACHMENT_BYTES)
      .max(Number.MAX_SAFE_INTEGER)
      .meta({ description: `encrypted blob size in bytes (esize, PROTOCOL.md §9); at most ATTACHMENT_MAX_BYTES (default ${LIMITS.DEFAULT_ATTACHMENT_MAX_BYTES})` }),
    expiresAt: TimestampMsSchema.optional().meta({ description: 'absolute expiry in ms since the epoch, the message timer’s expires_at (PROTOCOL.md §8); 0 or absent = none. Capped by the maximum retention.' }),
  })
  .strict();
export type CreateAttachmentRequest = z.infer<typeof CreateAttachmentRequestSchema>;

const PartUrlSchema = z.object({ partNumber: z.number().int().min(1).max(LIMITS.MAX_ATTACHMENT_PARTS), url: z.string() });
export type PartUrl = z.infer<typeof PartUrlSchema>;

export const UploadInstructionsSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('single'), url: z.string().meta({ description: 'pre-signed PUT of the whole blob (servers before every upload was multipart)' }), urlExpiresAt: z.number().int() }),
  z.object({
    kind: z.literal('multipart'),
    partSize: z.number().int().meta({ description: 'bytes of every part but the last' }),
    partCount: z.number().int(),
    parts: z.array(PartUrlSchema).meta({ description: 'pre-signed PUT of each part, signing its exact Content-Length; the ETag response header is not needed (the server lists the parts)' }),
    urlExpiresAt: z.number().int().meta({ description: 'when the URLs expire (ms); GET /v1/attachments/{id}/parts gives fresh ones' }),
  }),
]);
export type UploadInstructions = z.infer<typeof UploadInstructionsSchema>;

export const CreateAttachmentResponseSchema = z.object({
  id: AttachmentIdSchema,
  size: z.number().int(),
  expiresAt: z.number().int().meta({ description: 'when the server deletes the attachment (ms)' }),
  uploadDeadline: z.number().int().meta({ description: 'an upload not completed by then is aborted and removed (ms)' }),
  upload: UploadInstructionsSchema,
});
export type CreateAttachmentResponse = z.infer<typeof CreateAttachmentResponseSchema>;

export const AttachmentPartsResponseSchema = z.object({
  id: AttachmentIdSchema,
  kind: z.enum(['single', 'multipart']),
  partSize: z.number().int(),
  partCount: z.number().int(),
  uploaded: z.array(z.object({ partNumber: z.number().int(), size: z.number().int(), etag: z.string() })).meta({ description: 'parts already stored' }),
  missing: z.array(PartUrlSchema).meta({ description: 'fresh pre-signed PUTs for the parts still to send' }),
  urlExpiresAt: z.number().int(),
});
export type AttachmentPartsResponse = z.infer<typeof AttachmentPartsResponseSchema>;

export const CompleteAttachmentResponseSchema = z.object({ id: AttachmentIdSchema, size: z.number().int(), expiresAt: z.number().int() });
export type CompleteAttachmentResponse = z.infer<typeof CompleteAttachmentResponseSchema>;

export const DownloadAttachmentResponseSchema = z.object({
  id: AttachmentIdSchema,
  size: z.number().int(),
  url: z.string().meta({ description: 'short-lived pre-signed GET of the blob' }),
  urlExpiresAt: z.number().int(),
  expiresAt: z.number().int(),
});
export type DownloadAttachmentResponse = z.infer<typeof DownloadAttachmentResponseSchema>;

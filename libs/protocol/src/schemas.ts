import { z } from 'zod';
import { b64uDecodedLength, decodeAccountId } from '@umbra/crypto';
import { LIMITS } from './limits';
import type { ErrorCode } from './errors';

/** Account ids already checked (bech32m decoding showed up in send profiles); valid ones only, bounded. */
const validAccountIds = new Set<string>();

function isAccountIdText(s: string): boolean {
  if (validAccountIds.has(s)) return true;
  try {
    decodeAccountId(s);
  } catch {
    return false;
  }
  if (validAccountIds.size >= 50_000) validAccountIds.clear();
  validAccountIds.add(s);
  return true;
}

/** Bytes on the wire: base64url without padding, canonical, with bounds on the decoded length. */
export function b64uBytes(opts: { min?: number; max: number; tooLarge?: ErrorCode; description?: string }) {
  const { min = 0, max, tooLarge } = opts;
  const maxChars = Math.ceil((max * 4) / 3);
  return z
    .string()
    .superRefine((value, ctx) => {
      if (value.length > maxChars) {
        ctx.addIssue({ code: 'custom', message: `more than ${max} bytes`, params: { code: tooLarge ?? 'VALIDATION_FAILED' } });
        return;
      }
      const n = b64uDecodedLength(value);
      if (n === undefined) {
        ctx.addIssue({ code: 'custom', message: 'not canonical base64url without padding', params: { code: 'BAD_ENCODING' } });
      } else if (n < min) {
        ctx.addIssue({ code: 'custom', message: `fewer than ${min} bytes` });
      } else if (n > max) {
        ctx.addIssue({ code: 'custom', message: `more than ${max} bytes`, params: { code: tooLarge ?? 'VALIDATION_FAILED' } });
      }
    })
    .meta({ format: 'base64url', description: opts.description ?? `base64url (no padding), ${min}–${max} bytes` });
}

export const AccountIdSchema = z
  .string()
  .length(61)
  .refine(isAccountIdText, 'not an account id (bech32m, "um1…", 61 lower-case characters)')
  .meta({ description: 'Account id: bech32m of the 32-byte account_id, HRP "um" (PROTOCOL.md §1)', example: 'um1…' });

export const DeviceIdSchema = z.number().int().min(1).max(0xffff_ffff).meta({ description: 'u32 device id, non-zero' });

/** PREKEY, RATCHET, SENDER_KEY (PROTOCOL.md §7). SEALED (4) arrives with sealed sender. */
export const ENVELOPE_TYPES = [1, 2, 3] as const;
export const EnvelopeTypeSchema = z.union(ENVELOPE_TYPES.map((t) => z.literal(t)) as [z.ZodLiteral<1>, z.ZodLiteral<2>, z.ZodLiteral<3>]);

const ENVELOPE_ID = /^[1-9][0-9]{0,18}$/;

/** A server-assigned envelope id: a decimal string in 1..2^63-1 (a Postgres bigint). Ids never pass through a JS number. */
export function isEnvelopeId(s: unknown): s is string {
  return typeof s === 'string' && ENVELOPE_ID.test(s) && (s.length < LIMITS.MAX_ENVELOPE_ID.length || s <= LIMITS.MAX_ENVELOPE_ID);
}

export const EnvelopeIdSchema = z
  .string()
  .regex(ENVELOPE_ID, 'not an envelope id')
  .refine(isEnvelopeId, `an envelope id is at most ${LIMITS.MAX_ENVELOPE_ID}`)
  .meta({ description: `decimal string, 1–${LIMITS.MAX_ENVELOPE_ID}` });

export const TimestampMsSchema = z.number().int().min(0).max(LIMITS.MAX_EXPIRES_AT_MS);

/** A server-issued attachment id: 128 random bits, base64url. */
export const AttachmentIdSchema = z.string().regex(/^[A-Za-z0-9_-]{22}$/, 'not an attachment id');

export const RecipientEnvelopeSchema = z
  .object({
    accountId: AccountIdSchema,
    deviceId: DeviceIdSchema,
    type: EnvelopeTypeSchema,
    content: b64uBytes({ min: 1, max: LIMITS.MAX_ENVELOPE_CONTENT_BYTES, tooLarge: 'ENVELOPE_TOO_LARGE', description: 'opaque ciphertext' }),
  })
  .strict();

export const SendRequestSchema = z
  .object({
    clientMessageId: b64uBytes({ min: LIMITS.CLIENT_MESSAGE_ID_BYTES, max: LIMITS.CLIENT_MESSAGE_ID_BYTES }),
    recipients: z
      .array(RecipientEnvelopeSchema)
      .min(1)
      .superRefine((list, ctx) => {
        if (list.length > LIMITS.MAX_RECIPIENTS_PER_SEND) {
          ctx.addIssue({ code: 'custom', message: `more than ${LIMITS.MAX_RECIPIENTS_PER_SEND} recipients`, params: { code: 'TOO_MANY_RECIPIENTS' } });
        }
      })
      .meta({ description: `1–${LIMITS.MAX_RECIPIENTS_PER_SEND} recipient devices` }),
    expiresAt: TimestampMsSchema.optional().meta({ description: 'absolute expiry in ms since the epoch; 0 or absent = none' }),
    readTtlS: z.number().int().min(0).max(LIMITS.MAX_READ_TTL_S).optional().meta({ description: 'read-mode timer in seconds; 0 or absent = none' }),
    attachments: z
      .array(AttachmentIdSchema)
      .max(LIMITS.MAX_ATTACHMENTS_PER_MESSAGE)
      .optional()
      .meta({ description: 'ids of attachments (uploaded by this account) the message references; they are deleted when the message vanishes' }),
    urgent: z
      .boolean()
      .optional()
      .meta({ description: 'wake recipient devices that are not connected (a call\'s first offer); the server learns that this send is urgent. Absent = false' }),
  })
  .strict();
export type SendRequest = z.infer<typeof SendRequestSchema>;

export const SendResultSchema = z.object({
  clientMessageId: z.string(),
  serverTimestamp: z.number().int(),
  duplicate: z.boolean().meta({ description: 'true when this send had already been stored (an idempotent retry)' }),
});
export type SendResult = z.infer<typeof SendResultSchema>;

export const DeviceSetDiffSchema = z.object({ accountId: z.string(), deviceIds: z.array(z.number().int()) });
export const DeviceMismatchSchema = z.object({ missing: z.array(DeviceSetDiffSchema), extra: z.array(DeviceSetDiffSchema) });
export type DeviceMismatch = z.infer<typeof DeviceMismatchSchema>;

export const DeliveredEnvelopeSchema = z.object({
  id: EnvelopeIdSchema,
  type: z.number().int(),
  clientMessageId: z.string(),
  senderAccountId: z.string().nullable(),
  senderDeviceId: z.number().int().nullable(),
  serverTimestamp: z.number().int(),
  expiresAt: z.number().int(),
  readTtlS: z.number().int(),
  content: z.string().meta({ format: 'base64url' }),
});
export type DeliveredEnvelope = z.infer<typeof DeliveredEnvelopeSchema>;

export const FetchQuerySchema = z
  .object({
    limit: z.coerce.number().int().min(1).max(LIMITS.FETCH_PAGE_MAX).optional(),
    after: EnvelopeIdSchema.optional(),
  })
  .strict();
export const FetchResponseSchema = z.object({ messages: z.array(DeliveredEnvelopeSchema), more: z.boolean() });
export type FetchResponse = z.infer<typeof FetchResponseSchema>;

export const AckRequestSchema = z.object({ ids: z.array(EnvelopeIdSchema).min(1).max(LIMITS.MAX_ACK_IDS) }).strict();
export type AckRequest = z.infer<typeof AckRequestSchema>;
export const AckResultSchema = z.object({ acked: z.number().int() });

export const ReadRequestSchema = z.object({ ids: z.array(EnvelopeIdSchema).min(1).max(LIMITS.MAX_ACK_IDS) }).strict();
export type ReadRequest = z.infer<typeof ReadRequestSchema>;
export const ReadResultSchema = z.object({ lowered: z.number().int().meta({ description: 'read-mode copies whose deadline moved earlier' }) });

/** Envelope types the server itself writes into a queue (no sender; content is UTF-8 JSON, not ciphertext). */
export const NoticeType = { ExpiryReceipt: 5 } as const;

/** Content of a NoticeType.ExpiryReceipt envelope: a message expired before any device of these accounts received it. */
export const ExpiryReceiptSchema = z.object({
  k: z.literal('expired'),
  clientMessageId: z.string(),
  expiresAt: z.number().int(),
  accountIds: z.array(z.string()),
});
export type ExpiryReceipt = z.infer<typeof ExpiryReceiptSchema>;

/**
 * Body of POST /v1/messages/recall: the sender's own clientMessageId and the accounts it sent to (the
 * peer, or the group's members, and the sender's own account for its other devices). Envelopes are
 * partitioned and keyed by recipient account, so the accounts are what lets the delete avoid an index
 * on the sender key of every envelope.
 */
export const RecallRequestSchema = z
  .object({
    clientMessageId: b64uBytes({ min: LIMITS.CLIENT_MESSAGE_ID_BYTES, max: LIMITS.CLIENT_MESSAGE_ID_BYTES }),
    accountIds: z
      .array(AccountIdSchema)
      .min(1)
      .max(LIMITS.MAX_RECALL_ACCOUNTS)
      .meta({ description: `1–${LIMITS.MAX_RECALL_ACCOUNTS} recipient accounts of the send; copies queued for other accounts are left alone` }),
  })
  .strict();
export type RecallRequest = z.infer<typeof RecallRequestSchema>;
export const RecallResultSchema = z.object({
  recalled: z.number().int().meta({
    description: 'queued copies deleted; 0 when every copy was already delivered and acknowledged, or no such send of this device is queued',
  }),
});
export type RecallResult = z.infer<typeof RecallResultSchema>;

export const TurnCredentialsSchema = z.object({
  username: z.string().meta({ description: '"<unix expiry>:<opaque id>" (TURN REST API)' }),
  password: z.string().meta({ description: 'base64(HMAC-SHA1(TURN secret, username))' }),
  ttlSeconds: z.number().int().positive().meta({ description: 'seconds until the credentials expire' }),
  urls: z.array(z.string()).min(1).meta({ description: 'turn: / turns: URIs for RTCIceServer.urls' }),
});
export type TurnCredentials = z.infer<typeof TurnCredentialsSchema>;

export const TYPING_STATES = ['started', 'stopped'] as const;
export const TypingRequestSchema = z
  .object({
    to: AccountIdSchema.meta({ description: 'the account whose connected devices are told' }),
    state: z.enum(TYPING_STATES),
    gid: b64uBytes({
      min: LIMITS.TYPING_GROUP_ID_MIN_BYTES,
      max: LIMITS.TYPING_GROUP_ID_MAX_BYTES,
      description: `the group the typing is in, relayed as is (opaque to the server: base64url, ${LIMITS.TYPING_GROUP_ID_MIN_BYTES}–${LIMITS.TYPING_GROUP_ID_MAX_BYTES} bytes); typing in a group is one event per member account`,
    }).optional(),
  })
  .strict();
export type TypingRequest = z.infer<typeof TypingRequestSchema>;
export const TypingResultSchema = z.object({ devices: z.number().int().meta({ description: 'devices of that account that were online (and were told)' }) });
export type TypingResult = z.infer<typeof TypingResultSchema>;

export const ExpiredMessageRefSchema = z.object({ senderAccountId: z.string(), senderDeviceId: z.number().int(), clientMessageId: z.string() });
export type ExpiredMessageRef = z.infer<typeof ExpiredMessageRefSchema>;

export const ChallengeResponseSchema = z.object({ nonce: z.string(), expiresAt: z.number().int() });
export type ChallengeResponse = z.infer<typeof ChallengeResponseSchema>;

export const TokenRequestSchema = z
  .object({ authResponse: b64uBytes({ min: 1, max: LIMITS.MAX_AUTH_RESPONSE_BYTES, description: 'AuthResponse (PROTOCOL.md §1)' }) })
  .strict();
export const TokenResponseSchema = z.object({
  token: z.string(),
  expiresAt: z.number().int(),
  accountId: z.string(),
  deviceId: z.number().int(),
});
export type TokenResponse = z.infer<typeof TokenResponseSchema>;

export const PowChallengeResponseSchema = z.object({
  challenge: z.string().meta({ format: 'base64url' }),
  difficulty: z.number().int().meta({ description: 'leading zero bits required of the solution hash' }),
  expiresAt: z.number().int(),
});
export type PowChallengeResponse = z.infer<typeof PowChallengeResponseSchema>;

export const RegisterRequestSchema = z
  .object({
    deviceList: b64uBytes({ min: 1, max: LIMITS.MAX_DEVICE_LIST_BYTES, tooLarge: 'TOO_MANY_DEVICES', description: 'SignedDeviceList, version 1' }),
    authResponse: b64uBytes({ min: 1, max: LIMITS.MAX_AUTH_RESPONSE_BYTES, description: 'AuthResponse by a device of the list' }),
    pow: z
      .object({
        challenge: b64uBytes({ min: 32, max: 32 }),
        solution: b64uBytes({ min: LIMITS.POW_SOLUTION_BYTES, max: LIMITS.POW_SOLUTION_BYTES }),
      })
      .strict(),
  })
  .strict();
export type RegisterRequest = z.infer<typeof RegisterRequestSchema>;

export const DeviceSummarySchema = z.object({ deviceId: z.number().int(), flags: z.number().int(), createdAt: z.number().int() });
export const AccountResponseSchema = z.object({
  accountId: z.string(),
  listVersion: z.number().int(),
  deviceList: z.string().meta({ format: 'base64url', description: 'the current SignedDeviceList' }),
  devices: z.array(DeviceSummarySchema),
  handle: z.string().nullable(),
  handleClaim: z.string().nullable().meta({ format: 'base64url' }),
});
export type AccountResponse = z.infer<typeof AccountResponseSchema>;

export const UpdateDevicesRequestSchema = z
  .object({ deviceList: b64uBytes({ min: 1, max: LIMITS.MAX_DEVICE_LIST_BYTES, tooLarge: 'TOO_MANY_DEVICES' }) })
  .strict();
export const UpdateDevicesResponseSchema = z.object({ listVersion: z.number().int(), removedDeviceIds: z.array(z.number().int()) });

export const HandleClaimRequestSchema = z
  .object({ claim: b64uBytes({ min: 1, max: LIMITS.MAX_HANDLE_CLAIM_BYTES, description: 'SignedHandleClaim (PROTOCOL.md §1)' }) })
  .strict();
export const HandleResponseSchema = z.object({ handle: z.string() });

export const HandleParamSchema = z.object({ handle: z.string().min(1).max(128) }).strict();
export const AccountParamSchema = z.object({ accountId: AccountIdSchema }).strict();

export const ErrorBodySchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    correlationId: z.string().optional(),
    details: z.unknown().optional(),
  }),
});

export const HealthResponseSchema = z.object({ status: z.enum(['ok', 'unavailable']), checks: z.record(z.string(), z.string()).optional() });

const PREKEY_RECORD_BYTES = 148;
const KEM_PREKEY_RECORD_BYTES = 1684;
const prekeyList = (bytes: number, what: string) =>
  z
    .array(b64uBytes({ min: bytes, max: bytes, description: what }))
    .superRefine((list, ctx) => {
      if (list.length > LIMITS.MAX_PREKEYS_PER_UPLOAD) {
        ctx.addIssue({ code: 'custom', message: `more than ${LIMITS.MAX_PREKEYS_PER_UPLOAD} keys`, params: { code: 'TOO_MANY_PREKEYS' } });
      }
    })
    .optional();

export const UploadKeysRequestSchema = z
  .object({
    signedPreKey: b64uBytes({ min: PREKEY_RECORD_BYTES, max: PREKEY_RECORD_BYTES, description: 'PreKeyRecord, kind 1 (PROTOCOL.md §2)' }).optional(),
    lastResortKemPreKey: b64uBytes({ min: KEM_PREKEY_RECORD_BYTES, max: KEM_PREKEY_RECORD_BYTES, description: 'KemPreKeyRecord, kind 4' }).optional(),
    oneTimePreKeys: prekeyList(PREKEY_RECORD_BYTES, 'PreKeyRecord, kind 2'),
    oneTimeKemPreKeys: prekeyList(KEM_PREKEY_RECORD_BYTES, 'KemPreKeyRecord, kind 3'),
  })
  .strict();
export type UploadKeysRequest = z.infer<typeof UploadKeysRequestSchema>;

export const KeyCountsResponseSchema = z.object({
  oneTimePreKeys: z.number().int(),
  oneTimeKemPreKeys: z.number().int(),
  signedPreKey: z.boolean(),
  lastResortKemPreKey: z.boolean(),
});
export type KeyCountsResponse = z.infer<typeof KeyCountsResponseSchema>;

export const BundlesQuerySchema = z.object({ deviceId: z.coerce.number().int().min(1).max(0xffff_ffff).optional() }).strict();
export const BundlesResponseSchema = z.object({
  accountId: z.string(),
  listVersion: z.number().int(),
  bundles: z.array(z.object({ deviceId: z.number().int(), bundle: z.string().meta({ format: 'base64url', description: 'PreKeyBundle (PROTOCOL.md §2)' }) })),
  withoutKeys: z.array(z.number().int()).meta({ description: 'devices that have not uploaded an SPK and a KEM prekey yet' }),
});
export type BundlesResponse = z.infer<typeof BundlesResponseSchema>;

export const ProvisioningParamSchema = z.object({ channel: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'channel is b64u(SHA-256(EPH_N))') }).strict();
export const ProvisioningMessageSchema = z
  .object({ message: b64uBytes({ min: 1, max: LIMITS.MAX_PROVISIONING_MESSAGE_BYTES, tooLarge: 'PAYLOAD_TOO_LARGE', description: 'ProvisioningMessage (PROTOCOL.md §1)' }) })
  .strict();
export const LinkReplySchema = z.object({ reply: b64uBytes({ min: 65, max: 65, description: 'LinkReply (PROTOCOL.md §1)' }) }).strict();

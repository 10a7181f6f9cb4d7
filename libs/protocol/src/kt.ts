import { z } from 'zod';
import { b64uBytes } from './schemas';

/** Key-transparency REST (PROTOCOL.md §12; docs/key-transparency.md). Served by key-directory, unauthenticated. */
export const KT_LIMITS = {
  /** Most leaves one GET /v1/kt/leaves returns. */
  LEAVES_PAGE_MAX: 1000,
  /** Most results one GET /v1/kt/monitor returns (a label with more leaves: page with `since`); each carries its own signature. */
  MONITOR_MAX_RESULTS: 100,
  /** A monitor page counts against the per-address KT read limit once per this many results (signing is the cost). */
  MONITOR_RESULTS_PER_HIT: 10,
  /** Oldest STH a client accepts (§12 check 2). */
  MAX_STH_AGE_MS: 86_400_000,
} as const;

const u64 = z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const KtTypeSchema = z.coerce.number().int().min(1).max(2).meta({ description: '1 DEVICE_LIST, 2 HANDLE_BINDING' });
const KtLabelSchema = b64uBytes({ min: 32, max: 32, description: 'label (32 bytes): account_id, or TH("umbra/v1/kt-handle", handle)' });
const b64u = (description: string) => z.string().meta({ format: 'base64url', description });

export const KtLookupQuerySchema = z.object({ type: KtTypeSchema, label: KtLabelSchema }).strict();
export type KtLookupQuery = z.infer<typeof KtLookupQuerySchema>;

export const KtMonitorQuerySchema = z
  .object({ type: KtTypeSchema, label: KtLabelSchema, since: u64.default(0).meta({ description: 'first leaf index to return' }) })
  .strict();
export type KtMonitorQuery = z.infer<typeof KtMonitorQuerySchema>;

export const KtConsistencyQuerySchema = z
  .object({ first: u64.pipe(z.number().min(1)), second: u64.pipe(z.number().min(1)) })
  .strict()
  .refine((q) => q.first <= q.second, { message: 'first must not exceed second', path: ['first'] });
export type KtConsistencyQuery = z.infer<typeof KtConsistencyQuerySchema>;

export const KtLeavesQuerySchema = z
  .object({ start: u64.default(0), limit: z.coerce.number().int().min(1).max(KT_LIMITS.LEAVES_PAGE_MAX).default(KT_LIMITS.LEAVES_PAGE_MAX) })
  .strict();
export type KtLeavesQuery = z.infer<typeof KtLeavesQuerySchema>;

export const KtSthResponseSchema = z.object({ sth: b64u('STH with at least the quorum of witness cosignatures') });
export type KtSthResponse = z.infer<typeof KtSthResponseSchema>;

export const KtConsistencyResponseSchema = z.object({ proof: b64u('ConsistencyProof (RFC 9162 §2.1.4)') });
export type KtConsistencyResponse = z.infer<typeof KtConsistencyResponseSchema>;

export const KtLookupResponseSchema = z.object({ result: b64u("LookupResult of the label's latest leaf under the current STH") });
export type KtLookupResponse = z.infer<typeof KtLookupResponseSchema>;

export const KtMonitorResponseSchema = z.object({
  results: z.array(b64u('LookupResult')).meta({ description: 'every leaf of the label from `since`, oldest first, each under the same STH' }),
  sth: b64u('the STH every result is proved under'),
});
export type KtMonitorResponse = z.infer<typeof KtMonitorResponseSchema>;

export const KtLeavesResponseSchema = z.object({
  leaves: z.array(z.object({ index: z.number().int(), leaf: b64u('KTLeaf (82 bytes)'), statement: b64u('SignedDeviceList or SignedHandleClaim') })),
  treeSize: z.number().int().meta({ description: 'tree size of the current STH; leaves at or past it are not returned yet' }),
});
export type KtLeavesResponse = z.infer<typeof KtLeavesResponseSchema>;

export const KtConfigResponseSchema = z.object({
  logPublicKey: z.string().meta({ description: "64 hex: the log's BIP340 public key" }),
  witnesses: z.array(z.object({ publicKey: z.string().meta({ description: '64 hex' }) })),
  quorum: z.number().int().meta({ description: 'distinct witness cosignatures every served STH carries' }),
  mmdMs: z.number().int().meta({ description: 'maximum merge delay: accepted statement → leaf' }),
  maxSthAgeMs: z.number().int(),
});
export type KtConfigResponse = z.infer<typeof KtConfigResponseSchema>;

import { z } from 'zod';
import { b64uBytes } from './schemas';

/**
 * The witness API (PROTOCOL.md §12; modelled on C2SP tlog-witness `add-checkpoint`). It is served by
 * `umbra-witness` on its own origin, not through the public origin, so it is not in ROUTES; the log's
 * witness client and the witness share these definitions.
 */
export const WITNESS_PATHS = {
  addSth: '/v1/witness/add-sth',
  state: '/v1/witness/state',
} as const;

/** Largest STH a witness reads: TreeHeadTBS 81 + signature 64 + u8 n + 255 × 104 cosignature bytes. */
export const WITNESS_MAX_STH_BYTES = 81 + 64 + 1 + 255 * 104;
/** Largest ConsistencyProof: 2 × u64 + u8 len + 64 hashes (a tree of up to 2^63 leaves needs fewer). */
export const WITNESS_MAX_PROOF_BYTES = 8 + 8 + 1 + 64 * 32;
/** How far ahead of the witness's clock an STH's timestamp may be. */
export const WITNESS_MAX_FUTURE_SKEW_MS = 5 * 60 * 1000;

export const WitnessAddSthRequestSchema = z
  .object({
    sth: b64uBytes({ min: 81 + 64 + 1, max: WITNESS_MAX_STH_BYTES, description: 'STH (PROTOCOL.md §12); cosignatures it carries are ignored' }),
    oldSize: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).meta({ description: 'the tree size the proof starts from: the size this witness last cosigned (0 on first contact)' }),
    proof: b64uBytes({ min: 17, max: WITNESS_MAX_PROOF_BYTES, description: 'ConsistencyProof from oldSize to the STH tree size' }),
  })
  .strict();
export type WitnessAddSthRequest = z.infer<typeof WitnessAddSthRequestSchema>;

export const WitnessAddSthResponseSchema = z.object({
  cosignature: z.string().meta({ format: 'base64url', description: 'witness_id[32] ‖ u64 t ‖ Sign(w_sk, "kt-witness", TreeHeadTBS ‖ u64 t) (104 bytes)' }),
});
export type WitnessAddSthResponse = z.infer<typeof WitnessAddSthResponseSchema>;

/** `details` of a 409 WITNESS_OLD_SIZE_MISMATCH: the size the witness last cosigned (prove from there). */
export const WitnessOldSizeMismatchDetailsSchema = z.object({ treeSize: z.number().int().min(0) });

export const WitnessStateResponseSchema = z.object({
  logId: z.string().meta({ description: 'hex SHA256(log public key)' }),
  witnessId: z.string().meta({ description: 'hex SHA256(witness public key)' }),
  treeSize: z.number().int().min(0),
  root: z.string().meta({ format: 'base64url', description: 'root of the last cosigned tree head (the empty-tree hash before the first)' }),
  cosignedAt: z.number().int().min(0).meta({ description: 'ms; 0 before the first cosignature' }),
  forked: z.boolean().meta({ description: 'true once the log was caught forking: the witness cosigns nothing more for it until an operator clears it' }),
});
export type WitnessStateResponse = z.infer<typeof WitnessStateResponseSchema>;

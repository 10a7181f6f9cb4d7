/** Why a key-transparency check failed (PROTOCOL.md §12, client checks (1)–(6)). */
export type KtFailureReason =
  | 'bad-sth-signature'
  | 'insufficient-cosignatures'
  | 'stale-sth'
  | 'inconsistent'
  | 'bad-inclusion'
  | 'statement-mismatch'
  | 'version-rollback'
  | 'wrong-account'
  | 'not-in-log';

export const KT_FAILURE_REASONS: readonly KtFailureReason[] = [
  'bad-sth-signature', 'insufficient-cosignatures', 'stale-sth', 'inconsistent', 'bad-inclusion', 'statement-mismatch', 'version-rollback', 'wrong-account', 'not-in-log',
];

/**
 * A key-transparency check failed: the keys the server served are not the ones the log commits to
 * (or the log itself misbehaves). Never retried silently: the lookup, and any send that needed it,
 * stops. `evidence` carries the signed structures that show it (base64url), for a report.
 */
export class KtVerificationError extends Error {
  override readonly name = 'KtVerificationError';

  constructor(
    readonly reason: KtFailureReason,
    message: string,
    readonly evidence: Readonly<Record<string, string>> = {},
  ) {
    super(`key transparency (${reason}): ${message}`);
  }
}

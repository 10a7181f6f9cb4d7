export type CryptoErrorCode =
  | 'MALFORMED'
  | 'UNSUPPORTED_SUITE'
  | 'UNSUPPORTED_VERSION'
  | 'BAD_KEY'
  | 'BAD_SIGNATURE'
  | 'INVALID_HANDLE'
  | 'ROLLBACK'
  | 'EQUIVOCATION'
  | 'DECRYPT_FAILED'
  | 'REPLAY'
  | 'TOO_MANY_SKIPPED'
  | 'BAD_COMMITMENT'
  | 'BAD_DIGEST'
  | 'TRUNCATED'
  | 'STALE';

/** The only error the library throws on bad input; `code` is stable. */
export class CryptoError extends Error {
  constructor(
    readonly code: CryptoErrorCode,
    message: string = code,
  ) {
    super(message);
    this.name = 'CryptoError';
  }
}

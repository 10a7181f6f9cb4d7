/** Stable error codes. Clients switch on `code`; `message` is for humans and may change. */
export const ERROR_STATUS = {
  VALIDATION_FAILED: 400,
  MALFORMED_JSON: 400,
  BAD_ENCODING: 400,
  BAD_SIGNATURE: 400,
  BAD_DEVICE_LIST: 400,
  BAD_HANDLE_CLAIM: 400,
  BAD_PREKEY: 400,
  INVALID_HANDLE: 400,
  BAD_AUTH_RESPONSE: 400,
  WRONG_ORIGIN: 400,
  CLOCK_SKEW: 400,
  DUPLICATE_RECIPIENT: 400,
  UNSUPPORTED_SUITE: 400,
  UNSUPPORTED_ENVELOPE_TYPE: 400,
  POW_INVALID: 400,
  AUTH_CHALLENGE_INVALID: 401,
  UNAUTHENTICATED: 401,
  TOKEN_INVALID: 401,
  TOKEN_EXPIRED: 401,
  DEVICE_NOT_IN_LIST: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  ACCOUNT_NOT_FOUND: 404,
  HANDLE_NOT_FOUND: 404,
  ACCOUNT_EXISTS: 409,
  HANDLE_TAKEN: 409,
  DEVICE_LIST_STALE: 409,
  HANDLE_CLAIM_STALE: 409,
  DEVICE_MISMATCH: 409,
  PAYLOAD_TOO_LARGE: 413,
  TOO_MANY_RECIPIENTS: 413,
  ENVELOPE_TOO_LARGE: 413,
  TOO_MANY_DEVICES: 413,
  TOO_MANY_PREKEYS: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  UNAVAILABLE: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export const ERROR_CODES = Object.keys(ERROR_STATUS) as ErrorCode[];

/** The one error shape every REST route and WebSocket acknowledgement uses. */
export interface ErrorBody {
  error: {
    code: ErrorCode;
    message: string;
    correlationId?: string;
    details?: unknown;
  };
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ERROR_STATUS, value);
}

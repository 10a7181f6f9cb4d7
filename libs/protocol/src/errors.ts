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
  ALREADY_EXPIRED: 400,
  AUTH_CHALLENGE_INVALID: 401,
  UNAUTHENTICATED: 401,
  TOKEN_INVALID: 401,
  TOKEN_EXPIRED: 401,
  DEVICE_NOT_IN_LIST: 401,
  FORBIDDEN: 403,
  NOT_UPLOADER: 403,
  NOT_FOUND: 404,
  ATTACHMENT_NOT_FOUND: 404,
  ACCOUNT_NOT_FOUND: 404,
  HANDLE_NOT_FOUND: 404,
  KT_LABEL_NOT_FOUND: 404,
  CALLS_NOT_CONFIGURED: 404,
  ACCOUNT_EXISTS: 409,
  HANDLE_TAKEN: 409,
  DEVICE_LIST_STALE: 409,
  HANDLE_CLAIM_STALE: 409,
  DEVICE_MISMATCH: 409,
  UPLOAD_INCOMPLETE: 409,
  UPLOAD_SIZE_MISMATCH: 409,
  ATTACHMENT_NOT_READY: 409,
  ATTACHMENT_ALREADY_COMPLETE: 409,
  PROVISIONING_CHANNEL_TAKEN: 409,
  PROVISIONING_REPLY_EXISTS: 409,
  WITNESS_OLD_SIZE_MISMATCH: 409,
  PAYLOAD_TOO_LARGE: 413,
  TOO_MANY_RECIPIENTS: 413,
  ENVELOPE_TOO_LARGE: 413,
  TOO_MANY_DEVICES: 413,
  TOO_MANY_PREKEYS: 413,
  ATTACHMENT_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  KT_FORK_DETECTED: 422,
  RATE_LIMITED: 429,
  QUEUE_FULL: 429,
  ATTACHMENT_QUOTA_EXCEEDED: 429,
  TOO_MANY_PENDING_UPLOADS: 429,
  HEADERS_TOO_LARGE: 431,
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

/**
 * The raw HTTP response for a request the HTTP parser refused before any route saw it (a request
 * head over the server's limit, or malformed HTTP): the same JSON error shape instead of a bare status.
 */
export function clientErrorResponse(parserCode: string | undefined): string {
  const [status, reason, code, message]: [number, string, ErrorCode, string] =
    parserCode === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request Header Fields Too Large', 'HEADERS_TOO_LARGE', 'the request line and headers are over the size limit']
      : [400, 'Bad Request', 'VALIDATION_FAILED', 'malformed HTTP request'];
  const body = JSON.stringify({ error: { code, message } } satisfies ErrorBody);
  return `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`;
}

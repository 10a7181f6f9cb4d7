import { ERROR_STATUS, type ErrorBody, type ErrorCode } from '@umbra/protocol';

/** An error a client may see: a stable code, a human message, optional structured details. */
export class ApiError extends Error {
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.status = ERROR_STATUS[code];
  }
}

/**
 * Turns anything thrown into the client error shape. Unknown errors become a sanitized INTERNAL:
 * their message never reaches the client (it could carry data); the caller logs them.
 */
export function toErrorBody(err: unknown, correlationId?: string): { status: number; body: ErrorBody; internal: boolean } {
  if (err instanceof ApiError) {
    return {
      status: err.status,
      body: { error: { code: err.code, message: err.message, ...(correlationId ? { correlationId } : {}), ...(err.details !== undefined ? { details: err.details } : {}) } },
      internal: false,
    };
  }
  return {
    status: 500,
    body: { error: { code: 'INTERNAL', message: 'internal error', ...(correlationId ? { correlationId } : {}) } },
    internal: true,
  };
}

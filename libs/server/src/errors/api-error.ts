import { ERROR_STATUS, LIMITS, type ErrorBody, type ErrorCode } from '@umbra/protocol';
import { isInfrastructureFailure } from './unavailable';

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

export const RETRY_AFTER_UNAVAILABLE_S = LIMITS.UNAVAILABLE_RETRY_AFTER_S;

/**
 * The one mapping from infrastructure failures (Postgres, Redis, S3 down, full or too slow) to the
 * client's 503 UNAVAILABLE with a Retry-After; undefined for anything else. toErrorBody applies it, so
 * the REST exception filter and the WebSocket acknowledgements answer alike.
 */
export function unavailableFrom(err: unknown): ApiError | undefined {
  if (err instanceof ApiError || !isInfrastructureFailure(err)) return undefined;
  return new ApiError('UNAVAILABLE', 'a backing service is unavailable; try again shortly', { retryAfterS: RETRY_AFTER_UNAVAILABLE_S });
}

/** Seconds of the Retry-After header an error asks for (429 and 503), if any. */
export function retryAfterOf(err: unknown): number | undefined {
  if (!(err instanceof ApiError) || (err.status !== 429 && err.status !== 503)) return undefined;
  const retry = (err.details as { retryAfterS?: unknown } | undefined)?.retryAfterS;
  return typeof retry === 'number' && retry > 0 ? retry : undefined;
}

/**
 * Turns anything thrown into the client error shape. Infrastructure failures become UNAVAILABLE. Unknown errors become a sanitized INTERNAL:
 * their message never reaches the client (it could carry data); the caller logs them.
 */
export function toErrorBody(thrown: unknown, correlationId?: string): { status: number; body: ErrorBody; internal: boolean } {
  const err = unavailableFrom(thrown) ?? thrown;
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

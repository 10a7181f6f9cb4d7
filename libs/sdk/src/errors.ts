import type { ErrorCode } from '@umbra/protocol';

/** A 4xx/5xx answer from the server, or a transport failure (status 0, code UNAVAILABLE). */
export class UmbraApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(`${code}: ${message}`);
  }

  /** Worth retrying unchanged later. */
  get retryable(): boolean {
    return this.status === 0 || this.code === 'UNAVAILABLE' || this.code === 'RATE_LIMITED' || this.status >= 500;
  }
}

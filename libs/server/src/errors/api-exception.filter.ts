import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException } from '@nestjs/common';
import type { Request, Response } from 'express';
import { CryptoError } from '@umbra/crypto';
import type { ErrorCode } from '@umbra/protocol';
import { ApiError, retryAfterOf, toErrorBody, unavailableFrom } from './api-error';
import { currentCorrelationId, type Logger } from '../logging/logger';
import { redactPath } from '../logging/redact';

const CRYPTO_TO_API: Partial<Record<string, ErrorCode>> = {
  UNSUPPORTED_SUITE: 'UNSUPPORTED_SUITE',
  BAD_SIGNATURE: 'BAD_SIGNATURE',
  INVALID_HANDLE: 'INVALID_HANDLE',
};

/** Maps a CryptoError from parsing client bytes to a 400 with a stable code. */
export function cryptoToApiError(err: CryptoError, fallback: ErrorCode, what: string): ApiError {
  return new ApiError(CRYPTO_TO_API[err.code] ?? fallback, `${what}: ${err.message}`);
}

/** Maps errors that arise before our code runs (body parser, router) to our codes. */
export function normaliseError(err: unknown): unknown {
  if (err instanceof ApiError) return err;
  const e = err as { type?: string; status?: number; statusCode?: number } | null;
  if (e && typeof e === 'object' && typeof e.type === 'string') {
    if (e.type === 'entity.parse.failed') return new ApiError('MALFORMED_JSON', 'request body is not valid JSON');
    if (e.type === 'entity.too.large') return new ApiError('PAYLOAD_TOO_LARGE', 'request body too large');
    if (e.type === 'charset.unsupported' || e.type === 'encoding.unsupported') return new ApiError('UNSUPPORTED_MEDIA_TYPE', 'unsupported body encoding');
  }
  if (err instanceof HttpException) {
    const status = err.getStatus();
    if (status === 404) return new ApiError('NOT_FOUND', 'no such route');
    if (status === 413) return new ApiError('PAYLOAD_TOO_LARGE', 'request body too large');
    if (status === 400) return new ApiError('VALIDATION_FAILED', 'bad request');
    if (status === 401) return new ApiError('UNAUTHENTICATED', 'authentication required');
    if (status === 403) return new ApiError('FORBIDDEN', 'forbidden');
    if (status === 429) return new ApiError('RATE_LIMITED', 'too many requests');
  }
  if (err instanceof CryptoError) return cryptoToApiError(err, 'VALIDATION_FAILED', 'bad input');
  return err;
}

/** Name, code and message of an infrastructure failure, for the operator's log (never sent to clients). */
export function describeFailure(err: unknown): Record<string, unknown> {
  if (!err || typeof err !== 'object') return { message: String(err) };
  const e = err as { name?: unknown; code?: unknown; message?: unknown };
  return { name: e.name, code: e.code, message: e.message };
}

@Catch()
export class ApiExceptionFilter implements ExceptionFilter {
  constructor(private readonly logger: Logger) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    if (host.getType() !== 'http') throw exception;
    const res = host.switchToHttp().getResponse<Response>();
    const req = host.switchToHttp().getRequest<Request>();
    const correlationId = currentCorrelationId();
    const normalised = normaliseError(exception);
    const unavailable = unavailableFrom(normalised);
    const error = unavailable ?? normalised;
    const { status, body, internal } = toErrorBody(error, correlationId);
    const route = (req.route as { path?: string } | undefined)?.path;
    if (internal) {
      this.logger.error({ err: exception instanceof Error ? { name: exception.name, stack: exception.stack } : String(exception), method: req.method, route }, 'unhandled error');
    } else if (unavailable) {
      this.logger.warn({ err: describeFailure(exception), method: req.method, route }, 'backing service unavailable');
    } else if (status >= 400) {
      this.logger.info({ status, code: body.error.code, method: req.method, path: redactPath(req.originalUrl ?? req.url) }, 'request rejected');
    }
    if (res.headersSent) return;
    const retry = retryAfterOf(error);
    if (retry) res.setHeader('Retry-After', String(retry));
    res.status(status).json(body);
  }
}

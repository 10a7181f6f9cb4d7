import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { LoggerService } from '@nestjs/common';
import pino, { type Logger } from 'pino';

interface LogContext {
  correlationId: string;
}

const storage = new AsyncLocalStorage<LogContext>();

export function newCorrelationId(): string {
  return randomUUID();
}

export function currentCorrelationId(): string | undefined {
  return storage.getStore()?.correlationId;
}

export function withCorrelationId<T>(correlationId: string, fn: () => T): T {
  return storage.run({ correlationId }, fn);
}

/**
 * Structured JSON logs with the correlation id of the request or job being handled. Callers pass
 * ids and counts, never payloads, keys or tokens; the redact list is a second line of defence.
 */
export function createLogger(opts: { service: string; instanceId: string; level: string; destination?: pino.DestinationStream }): Logger {
  return pino(
    {
      level: opts.level,
      base: { service: opts.service, instance: opts.instanceId },
      timestamp: pino.stdTimeFunctions.isoTime,
      messageKey: 'msg',
      formatters: { level: (label) => ({ level: label }) },
      mixin: () => {
        const id = currentCorrelationId();
        return id ? { correlationId: id } : {};
      },
      redact: {
        paths: ['token', 'authorization', '*.token', '*.authorization', 'headers.authorization', 'content', '*.content', 'ciphertext', '*.ciphertext'],
        censor: '[REDACTED]',
      },
    },
    opts.destination,
  );
}

/** Nest's logger interface on top of pino. */
export class PinoNestLogger implements LoggerService {
  constructor(private readonly logger: Logger) {}

  log(message: unknown, context?: string): void {
    this.logger.info({ context }, String(message));
  }
  error(message: unknown, trace?: string, context?: string): void {
    this.logger.error({ context, trace }, String(message));
  }
  warn(message: unknown, context?: string): void {
    this.logger.warn({ context }, String(message));
  }
  debug(message: unknown, context?: string): void {
    this.logger.debug({ context }, String(message));
  }
  verbose(message: unknown, context?: string): void {
    this.logger.trace({ context }, String(message));
  }
}

export const LOGGER = Symbol('LOGGER');
export type { Logger };

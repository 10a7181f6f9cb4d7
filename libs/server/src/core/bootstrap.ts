import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { DynamicModule, Type } from '@nestjs/common';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import express, { type NextFunction, type Request, type Response } from 'express';
import type pino from 'pino';
import { clientErrorResponse, routeFor, LIMITS, type ServiceName } from '@umbra/protocol';
import { loadConfig, ConfigError, type AppConfig } from '../config/config';
import { createLogger, newCorrelationId, PinoNestLogger, withCorrelationId, type Logger } from '../logging/logger';
import { Metrics } from '../metrics/metrics';
import { ApiError, retryAfterOf, toErrorBody, unavailableFrom } from '../errors/api-error';
import { clientBucket } from '../rate-limit/client-address';
import { ApiExceptionFilter, normaliseError } from '../errors/api-exception.filter';
import { CoreModule, type CoreOverrides } from './core.module';
import { HealthService } from '../health/health.service';

export interface ServiceDefinition {
  name: ServiceName;
  /** The service's feature module(s); CoreModule is added around them. */
  imports: (config: AppConfig) => (Type | DynamicModule)[];
  /** Runs after the app is created and before it listens (WebSocket adapters, extra middleware). */
  configure?: (app: NestExpressApplication, config: AppConfig, logger: Logger) => void | Promise<void>;
}

export interface CreateOptions {
  env: Record<string, string | undefined>;
  overrides?: CoreOverrides;
  logDestination?: pino.DestinationStream;
  defaultMetrics?: boolean;
  listen?: boolean;
}

export interface ServiceApp {
  app: NestExpressApplication;
  config: AppConfig;
  logger: Logger;
  metrics: Metrics;
  url: string;
}

const REQUEST_ID = /^[A-Za-z0-9._-]{8,128}$/;

function sendError(res: Response, err: unknown, logger: Logger): void {
  const error = normaliseError(err);
  const { status, body, internal } = toErrorBody(error, res.getHeader('x-request-id') as string | undefined);
  if (internal) logger.error({ err: String(err) }, 'request failed before routing');
  const retry = retryAfterOf(unavailableFrom(error) ?? error);
  if (retry) res.setHeader('Retry-After', String(retry));
  res.status(status).json(body);
}

/**
 * Refuses a request whose body will not be read. Up to the largest body any route takes, the rest is
 * discarded unparsed before answering, so proxies that are still sending (the local edge) get the
 * answer instead of a reset; a larger or undeclared body gets the answer and the connection closed.
 */
function refuseUnread(req: Request, res: Response, err: ApiError, logger: Logger): void {
  const declared = Number(req.headers['content-length']);
  if (!Number.isFinite(declared) || declared > LIMITS.MAX_HTTP_BODY_BYTES) {
    res.setHeader('Connection', 'close');
    return sendError(res, err, logger);
  }
  req.on('end', () => sendError(res, err, logger));
  req.on('error', () => res.destroy());
  req.resume();
}

/** One JSON parser per body limit (a handful of distinct limits exist). */
function jsonParsers(): (limit: number) => ReturnType<typeof express.json> {
  const parsers = new Map<number, ReturnType<typeof express.json>>();
  return (limit) => {
    let p = parsers.get(limit);
    if (!p) {
      p = express.json({ limit, strict: true, type: () => true });
      parsers.set(limit, p);
    }
    return p;
  };
}

/** Creates (and by default starts) one service: config validated, logs, metrics, errors, health. */
export async function createServiceApp(def: ServiceDefinition, opts: CreateOptions): Promise<ServiceApp> {
  const config = loadConfig(def.name, opts.env);
  const logger = createLogger({ service: def.name, instanceId: config.instanceId, level: config.LOG_LEVEL, destination: opts.logDestination });
  const metrics = new Metrics(def.name, opts.defaultMetrics ?? false);

  @Module({ imports: [CoreModule.forRoot(config, logger, metrics, opts.overrides), ...def.imports(config)] })
  class RootModule {}

  const app = await NestFactory.create<NestExpressApplication>(RootModule, {
    logger: new PinoNestLogger(logger.child({ context: 'nest' })),
    bodyParser: false,
    abortOnError: false,
  });
  // Exactly the configured hops may set X-Forwarded-For; req.ip is the address the last of them saw.
  app.set('trust proxy', config.TRUSTED_PROXIES.length > 0 ? config.TRUSTED_PROXIES : false);
  app.disable('x-powered-by');
  app.disable('etag');

  app.use((req: Request, res: Response, next: NextFunction) => {
    const incoming = req.headers['x-request-id'];
    const id = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : newCorrelationId();
    res.setHeader('x-request-id', id);
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const route = (req.route as { path?: string } | undefined)?.path ?? 'unmatched';
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      metrics.httpRequests.inc({ method: req.method, route, status: String(res.statusCode) });
      metrics.httpDuration.observe({ method: req.method, route }, seconds);
    });
    // Per-address limits (@Ip()) count by client: IPv4 as is, IPv6 by /64.
    Object.defineProperty(req, 'ip', { value: clientBucket(req.ip), configurable: true, enumerable: true });
    withCorrelationId(id, () => next());
  });

  // Bodies are limited per route (ROUTES[…].maxBodyBytes, else a small default) and refused by their
  // declared length before a byte is read; an authenticated route's body is not read without credentials.
  const json = jsonParsers();
  app.use((req: Request, res: Response, next: NextFunction) => {
    const hasBody = (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0') || req.headers['transfer-encoding'] !== undefined;
    if (!hasBody || req.method === 'GET' || req.method === 'HEAD') return next();
    const route = routeFor(req.method, req.path);
    const limit = route?.maxBodyBytes ?? LIMITS.DEFAULT_HTTP_BODY_BYTES;
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      return refuseUnread(req, res, new ApiError('PAYLOAD_TOO_LARGE', `request body over ${limit} bytes`), logger);
    }
    if (route?.auth && req.headers.authorization === undefined) {
      return refuseUnread(req, res, new ApiError('UNAUTHENTICATED', 'authentication required'), logger);
    }
    const type = req.headers['content-type'] ?? '';
    if (!/^application\/json(\s*;\s*charset=utf-8)?\s*$/i.test(type)) {
      return refuseUnread(req, res, new ApiError('UNSUPPORTED_MEDIA_TYPE', 'request bodies must be application/json'), logger);
    }
    json(limit)(req, res, (err?: unknown) => (err ? sendError(res, err, logger) : next()));
  });

  app.useGlobalFilters(new ApiExceptionFilter(logger));
  await def.configure?.(app, config, logger);
  (app.getHttpServer() as Server).on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (socket.writable) socket.end(clientErrorResponse(err.code));
    else socket.destroy();
  });
  if (opts.listen !== false) await app.listen(config.port, config.HOST);
  const url = opts.listen !== false ? (await app.getUrl()).replace('[::1]', '127.0.0.1') : '';
  return { app, config, logger, metrics, url };
}

/** The process entry of every service: fail fast on bad config, drain on SIGTERM. */
export async function runService(def: ServiceDefinition): Promise<void> {
  let created: ServiceApp;
  try {
    created = await createServiceApp(def, { env: process.env, defaultMetrics: true });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(78);
    }
    process.stderr.write(`${def.name} failed to start: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  }
  const { app, config, logger } = created;
  logger.info({ port: config.port, origin: config.PUBLIC_ORIGIN }, `${def.name} listening`);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'draining');
    app.get(HealthService).markDraining();
    const force = setTimeout(() => {
      logger.error('grace period over; exiting');
      process.exit(1);
    }, config.SHUTDOWN_GRACE_MS);
    force.unref();
    try {
      await app.close();
      logger.info('stopped');
      process.exit(0);
    } catch (err) {
      logger.error({ err: String(err) }, 'shutdown failed');
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  // Started by the local launcher over IPC: stop when the launcher goes away, however it died.
  if (process.send) process.on('disconnect', () => void stop('launcher-exit'));
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('unhandledRejection', (reason) => logger.error({ err: reason instanceof Error ? reason.stack : String(reason) }, 'unhandled rejection'));
}

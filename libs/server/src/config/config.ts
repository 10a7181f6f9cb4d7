import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { z } from 'zod';
import { LIMITS, RATE_LIMITS, DEFAULT_POW_DIFFICULTY, type ServiceName } from '@umbra/protocol';
import { Secret } from './secret';

const int = (def: number, min = 0, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max).default(def);
const bool = (def: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no'])
    .default(def ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1' || v === 'yes');
const secret = (def?: string) => (def === undefined ? z.string().min(1) : z.string().min(1).default(def)).transform((v) => new Secret(v));

export const DEFAULT_PORTS: Record<ServiceName, number> = {
  gateway: 3000,
  'key-directory': 3001,
  'message-relay': 3002,
  'media-upload': 3003,
  'expiry-worker': 3004,
};

/**
 * Every environment variable any service reads, with its default. docs/operations.md documents
 * this table; services read only the parsed, typed result (libraries never touch process.env).
 */
export const ENV_SCHEMA = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: z.coerce.number().int().min(0).max(65535).optional(),
  HOST: z.string().default('0.0.0.0'),
  INSTANCE_ID: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  DATABASE_URL: secret('postgres://postgres@127.0.0.1:5432/umbra'),
  DATABASE_POOL_SIZE: int(10, 1, 200),
  REDIS_URL: secret('redis://127.0.0.1:6379'),
  REDIS_PREFIX: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/).default('umbra'),
  PUBLIC_ORIGIN: z
    .string()
    .default('http://127.0.0.1:8080')
    .refine((v) => {
      try {
        return new URL(v).origin === v;
      } catch {
        return false;
      }
    }, 'must be a serialized web origin: scheme://host[:port], lower case, no path or trailing slash'),
  SHUTDOWN_GRACE_MS: int(10_000, 0, 600_000),
  TRUST_PROXY: bool(true),
  TOKEN_TTL_S: int(LIMITS.TOKEN_TTL_S, 60, LIMITS.TOKEN_TTL_S),
  POW_DIFFICULTY: int(DEFAULT_POW_DIFFICULTY, 0, 40),
  MAX_RETENTION_S: int(LIMITS.DEFAULT_MAX_RETENTION_S, 60, 366 * 24 * 3600),
  RELAY_CONCURRENCY: int(4, 1, 64),
  RELAY_BATCH_MAX: int(256, 1, 5000),
  RELAY_BATCH_WAIT_MS: int(2, 0, 1000),
  RELAY_TIMEOUT_MS: int(10_000, 100, 120_000),
  SWEEP_INTERVAL_MS: int(60_000, 100, 3_600_000),
  SWEEP_BATCH: int(1000, 1, 100_000),
  EXPIRY_KEY_WINDOW_S: int(60, 1, 3600),
  EXPIRY_CONCURRENCY: int(200, 1, 5000),
  EXPIRY_BATCH_MAX: int(500, 1, 10_000),
  RATE_LIMIT_REGISTER_PER_IP_PER_HOUR: int(RATE_LIMITS.REGISTER_PER_IP_PER_HOUR),
  RATE_LIMIT_REGISTER_PER_ACCOUNT_PER_HOUR: int(RATE_LIMITS.REGISTER_PER_ACCOUNT_PER_HOUR),
  RATE_LIMIT_CHALLENGE_PER_IP_PER_MINUTE: int(RATE_LIMITS.CHALLENGE_PER_IP_PER_MINUTE),
  RATE_LIMIT_TOKEN_PER_DEVICE_PER_MINUTE: int(RATE_LIMITS.TOKEN_PER_DEVICE_PER_MINUTE),
  RATE_LIMIT_SEND_PER_DEVICE_PER_SECOND: int(RATE_LIMITS.SEND_PER_DEVICE_PER_SECOND),
  RATE_LIMIT_LOOKUP_PER_ACCOUNT_PER_MINUTE: int(RATE_LIMITS.LOOKUP_PER_ACCOUNT_PER_MINUTE),
  RATE_LIMIT_ACCOUNT_CHANGES_PER_HOUR: int(RATE_LIMITS.ACCOUNT_CHANGES_PER_ACCOUNT_PER_HOUR),
  RATE_LIMIT_BUNDLE_FETCH_PER_ACCOUNT_PER_HOUR: int(RATE_LIMITS.BUNDLE_FETCH_PER_ACCOUNT_PER_HOUR),
  RATE_LIMIT_ONE_TIME_KEYS_PER_PAIR_PER_HOUR: int(RATE_LIMITS.ONE_TIME_KEYS_PER_PAIR_PER_HOUR),
  S3_ENDPOINT: z.string().url().optional(),
  S3_REGION: z.string().default('us-east-1'),
  S3_BUCKET: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/).default('umbra-attachments'),
  S3_ACCESS_KEY_ID: secret('S3RVER'),
  S3_SECRET_ACCESS_KEY: secret('S3RVER'),
  S3_FORCE_PATH_STYLE: bool(true),
  S3_PUBLIC_ENDPOINT: z.string().url().optional(),
  ATTACHMENT_MAX_BYTES: int(LIMITS.DEFAULT_ATTACHMENT_MAX_BYTES, LIMITS.MIN_ATTACHMENT_BYTES, LIMITS.MAX_ATTACHMENT_PARTS * 5 * 1024 ** 3),
  ATTACHMENT_MULTIPART_THRESHOLD_BYTES: int(LIMITS.DEFAULT_ATTACHMENT_MULTIPART_THRESHOLD_BYTES, LIMITS.MIN_ATTACHMENT_PART_BYTES, 5 * 1024 ** 3),
  ATTACHMENT_PART_BYTES: int(LIMITS.DEFAULT_ATTACHMENT_PART_BYTES, LIMITS.MIN_ATTACHMENT_PART_BYTES, 5 * 1024 ** 3),
  ATTACHMENT_QUOTA_BYTES_PER_DAY: int(64 * 1024 ** 3, 0),
  ATTACHMENT_MAX_PENDING_UPLOADS: int(16, 1, 10_000),
  ATTACHMENT_UPLOAD_TIMEOUT_S: int(24 * 3600, 60, 7 * 24 * 3600),
  ATTACHMENT_UPLOAD_URL_TTL_S: int(3600, 1, 7 * 24 * 3600),
  ATTACHMENT_DOWNLOAD_URL_TTL_S: int(300, 1, 7 * 24 * 3600),
  ATTACHMENT_REAP_INTERVAL_MS: int(60_000, 100, 3_600_000),
  ATTACHMENT_REAP_BATCH: int(100, 1, 1000),
});

type Env = z.infer<typeof ENV_SCHEMA>;

export interface AppConfig extends Omit<Env, 'PORT' | 'INSTANCE_ID'> {
  service: ServiceName;
  port: number;
  instanceId: string;
}

export class ConfigError extends Error {}

/** Parse the environment once at boot; throw one readable error listing every bad variable. */
export function loadConfig(service: ServiceName, env: Record<string, string | undefined>): AppConfig {
  const parsed = ENV_SCHEMA.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(env)'}: ${i.message}`);
    throw new ConfigError(`invalid configuration for ${service}:\n${lines.join('\n')}`);
  }
  const { PORT, INSTANCE_ID, ...rest } = parsed.data;
  return {
    ...rest,
    service,
    port: PORT ?? DEFAULT_PORTS[service],
    instanceId: INSTANCE_ID ?? `${service}-${hostname().slice(0, 24)}-${randomBytes(4).toString('hex')}`,
  };
}

/** Injection token of the typed config. */
export const APP_CONFIG = Symbol('APP_CONFIG');

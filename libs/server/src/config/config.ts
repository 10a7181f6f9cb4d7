import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { z } from 'zod';
import { LIMITS, RATE_LIMITS, DEFAULT_POW_DIFFICULTY, type ServiceName } from '@umbra/protocol';
import { hexDecode, isValidPublicKey, isValidSecretKey } from '@umbra/crypto';
import { Secret } from './secret';
import { DEFAULT_ENVELOPE_PARTITIONS, MAX_ENVELOPE_PARTITIONS } from '../database/migrations/1764000800000-EnvelopePartitions';
import { parseClusterNodes, type RedisNode, type RedisTarget } from '../redis/redis';
import { DEV_KT_LOG_PUBLIC_KEY, DEV_KT_LOG_SIGNING_KEY, DEV_WITNESS_SIGNING_KEY, HEX_KEY } from './kt-dev-keys';

const int = (def: number, min = 0, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max).default(def);
const bool = (def: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no'])
    .default(def ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1' || v === 'yes');
/** express `trust proxy` names for the loopback, link-local and private ranges. */
const PROXY_KEYWORDS = new Set(['loopback', 'linklocal', 'uniquelocal']);
function isCidr(entry: string): boolean {
  if (PROXY_KEYWORDS.has(entry)) return true;
  const [address = '', bits, ...rest] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (bits === undefined) return true;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}
const cidrList = (def: string) =>
  z
    .string()
    .default(def)
    .transform((v) => v.split(',').map((e) => e.trim()).filter(Boolean))
    .refine((list) => list.every(isCidr), 'must be a comma-separated list of IP addresses or CIDR ranges (or loopback, linklocal, uniquelocal); empty trusts no proxy');
/** One KT_WITNESSES entry: <http(s) url>|<64 hex public key> (the url may itself contain no '|'). */
function isWitnessEntry(entry: string): boolean {
  const cut = entry.lastIndexOf('|');
  if (cut < 0) return false;
  const [url, pk] = [entry.slice(0, cut), entry.slice(cut + 1)];
  if (!HEX_KEY.test(pk) || !isValidPublicKey(hexDecode(pk.toLowerCase()))) return false;
  try {
    const u = new URL(url);
    return (u.protocol === 'http:' || u.protocol === 'https:') && !url.includes('|');
  } catch {
    return false;
  }
}
const secret = (def?: string) => (def === undefined ? z.string().min(1) : z.string().min(1).default(def)).transform((v) => new Secret(v));

export const DEFAULT_PORTS: Record<ServiceName, number> = {
  gateway: 3000,
  'key-directory': 3001,
  'message-relay': 3002,
  'media-upload': 3003,
  'expiry-worker': 3004,
  witness: 3005,
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
  DATABASE_PREPARED_STATEMENTS: bool(true),
  /** Hash partitions of `envelopes`; read only by the migration that partitions it (EnvelopePartitions1764000800000). */
  ENVELOPE_PARTITIONS: int(DEFAULT_ENVELOPE_PARTITIONS, 1, MAX_ENVELOPE_PARTITIONS),
  REDIS_URL: secret('redis://127.0.0.1:6379'),
  REDIS_COMMAND_TIMEOUT_MS: int(2000, 100, 60_000),
  RATE_LIMIT_REDIS_URL: z.string().min(1).transform((v) => new Secret(v)).optional(),
  REDIS_CLUSTER_NODES: z
    .string()
    .transform((v, ctx): RedisNode[] => {
      try {
        return parseClusterNodes(v);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: `must be a comma-separated list of host:port (${(err as Error).message})` });
        return z.NEVER;
      }
    })
    .optional(),
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
  TRUSTED_PROXIES: cidrList('loopback'),
  TOKEN_TTL_S: int(LIMITS.TOKEN_TTL_S, 60, LIMITS.TOKEN_TTL_S),
  POW_DIFFICULTY: int(DEFAULT_POW_DIFFICULTY, 0, 40),
  MAX_RETENTION_S: int(LIMITS.DEFAULT_MAX_RETENTION_S, 60, 366 * 24 * 3600),
  RELAY_CONCURRENCY: int(4, 1, 64),
  RELAY_BATCH_MAX: int(256, 1, 5000),
  RELAY_BATCH_WAIT_MS: int(2, 0, 1000),
  RELAY_TIMEOUT_MS: int(10_000, 100, 120_000),
  QUEUE_MAX_ENVELOPES_PER_DEVICE: int(LIMITS.DEFAULT_QUEUE_MAX_ENVELOPES, 1, 10_000_000),
  QUEUE_MAX_BYTES_PER_DEVICE: int(LIMITS.DEFAULT_QUEUE_MAX_BYTES, 1024, 64 * 1024 ** 3),
  DEVICE_SET_CACHE_TTL_MS: int(LIMITS.DEFAULT_DEVICE_SET_CACHE_TTL_MS, 0, 60_000),
  DELIVERY_CHECK_INTERVAL_MS: int(15_000, 100, 600_000),
  PRESENCE_CHECK_INTERVAL_MS: int(1000, 100, 60_000),
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
  RATE_LIMIT_MAX_CLIENT_BUCKETS_PER_WINDOW: int(RATE_LIMITS.MAX_CLIENT_BUCKETS_PER_WINDOW, 1),
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
  ATTACHMENT_UPLOAD_URL_TTL_S: int(LIMITS.DEFAULT_ATTACHMENT_UPLOAD_URL_TTL_S, 1, LIMITS.MAX_ATTACHMENT_UPLOAD_URL_TTL_S),
  ATTACHMENT_DOWNLOAD_URL_TTL_S: int(300, 1, 7 * 24 * 3600),
  ATTACHMENT_REAP_INTERVAL_MS: int(60_000, 100, 3_600_000),
  ATTACHMENT_REAP_BATCH: int(100, 1, 1000),
  // Checked when the witness loads its config (witnessKeyProblems), so the placeholders of the k8s Secret template parse here.
  WITNESS_SIGNING_KEY: secret(DEV_WITNESS_SIGNING_KEY),
  WITNESS_LOG_PUBLIC_KEY: z.string().min(1).default(DEV_KT_LOG_PUBLIC_KEY),
  WITNESS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  WITNESS_RATE_LIMIT_PER_IP_PER_MINUTE: int(600, 0),
  // Checked when key-directory loads its config (ktProblems), so the placeholders of the k8s Secret template parse here.
  KT_LOG_SIGNING_KEY: secret(DEV_KT_LOG_SIGNING_KEY),
  KT_WITNESSES: z.string().default(''),
  KT_WITNESS_QUORUM: z.coerce.number().int().min(0).max(255).optional(),
  KT_MMD_MS: int(3_600_000, 1000, 7 * 24 * 3_600_000),
  KT_STH_INTERVAL_MS: int(600_000, 100, 24 * 3_600_000),
  KT_SEQUENCE_INTERVAL_MS: int(1000, 50, 3_600_000),
  KT_SEQUENCE_BATCH: int(5000, 1, 100_000),
  KT_WITNESS_TIMEOUT_MS: int(5000, 100, 120_000),
  KT_LOOKUP_FLOOR_MS: int(50, 0, 10_000),
  RATE_LIMIT_KT_LOOKUP_PER_IP_PER_MINUTE: int(RATE_LIMITS.KT_LOOKUP_PER_IP_PER_MINUTE),
  // Calls (gateway): TURN credentials for coturn's use-auth-secret. Both or neither; neither answers CALLS_NOT_CONFIGURED.
  TURN_SECRET: z.string().min(16, 'at least 16 characters').transform((v) => new Secret(v)).optional(),
  TURN_URLS: z
    .string()
    .optional()
    .transform((v) => (v ?? '').split(',').map((e) => e.trim()).filter(Boolean))
    .refine((list) => list.every((u) => /^turns?:[^\s,]+$/.test(u)), 'must be a comma-separated list of turn: or turns: URIs'),
  TURN_CREDENTIAL_TTL_S: int(3600, 60, 86_400),
  RATE_LIMIT_TURN_PER_ACCOUNT_PER_HOUR: int(RATE_LIMITS.TURN_CREDENTIALS_PER_ACCOUNT_PER_HOUR),
});

type Env = z.infer<typeof ENV_SCHEMA>;

export interface AppConfig extends Omit<Env, 'PORT' | 'INSTANCE_ID'> {
  service: ServiceName;
  /** KT_WITNESSES parsed (key-directory; checked there, empty elsewhere). */
  ktWitnesses: { url: string; publicKey: string }[];
  port: number;
  instanceId: string;
}

export class ConfigError extends Error {}

/** The services that talk to the object store (and so read the S3 keys). */
const S3_SERVICES: ServiceName[] = ['media-upload', 'expiry-worker'];
const PLACEHOLDER = /change[-_]?me/i;

/**
 * What production refuses: the development defaults and the placeholders of .env.example and the k8s
 * Secret template. Messages name the variable, never its value.
 */
function productionRefusals(service: ServiceName, env: Env): string[] {
  const out: string[] = [];
  const secrets: [string, Secret | undefined][] = [
    ['DATABASE_URL', env.DATABASE_URL],
    ['REDIS_URL', env.REDIS_URL],
    ['RATE_LIMIT_REDIS_URL', env.RATE_LIMIT_REDIS_URL],
    ['TURN_SECRET', env.TURN_SECRET],
    ...(S3_SERVICES.includes(service) ? ([['S3_ACCESS_KEY_ID', env.S3_ACCESS_KEY_ID], ['S3_SECRET_ACCESS_KEY', env.S3_SECRET_ACCESS_KEY]] as [string, Secret][]) : []),
  ];
  for (const [name, value] of secrets) {
    if (value && PLACEHOLDER.test(value.reveal())) out.push(`${name}: still holds a change-me placeholder`);
  }
  let dbPassword = '';
  try {
    dbPassword = new URL(env.DATABASE_URL.reveal()).password;
  } catch {
    out.push('DATABASE_URL: not a URL');
  }
  if (!dbPassword && !out.some((l) => l.startsWith('DATABASE_URL'))) out.push('DATABASE_URL: has no password (the development default)');
  if (service === 'witness') {
    if (PLACEHOLDER.test(env.WITNESS_SIGNING_KEY.reveal())) out.push('WITNESS_SIGNING_KEY: still holds a change-me placeholder');
    if (env.WITNESS_SIGNING_KEY.reveal().toLowerCase() === DEV_WITNESS_SIGNING_KEY) out.push('WITNESS_SIGNING_KEY: is the development key (its secret is in the source)');
    if (env.WITNESS_LOG_PUBLIC_KEY.toLowerCase() === DEV_KT_LOG_PUBLIC_KEY) out.push('WITNESS_LOG_PUBLIC_KEY: is the development log key (its secret is in the source)');
  }
  if (service === 'key-directory') {
    if (PLACEHOLDER.test(env.KT_LOG_SIGNING_KEY.reveal())) out.push('KT_LOG_SIGNING_KEY: still holds a change-me placeholder');
    if (env.KT_LOG_SIGNING_KEY.reveal().toLowerCase() === DEV_KT_LOG_SIGNING_KEY) out.push('KT_LOG_SIGNING_KEY: is the development key (its secret is in the source)');
    if (PLACEHOLDER.test(env.KT_WITNESSES)) out.push('KT_WITNESSES: still holds a change-me placeholder');
    if (env.KT_WITNESSES.trim() === '' || env.KT_WITNESS_QUORUM === 0) out.push('KT_WITNESSES / KT_WITNESS_QUORUM: production needs at least one witness and a quorum of at least 1');
  }
  if (S3_SERVICES.includes(service)) {
    for (const [name, value] of [['S3_ACCESS_KEY_ID', env.S3_ACCESS_KEY_ID], ['S3_SECRET_ACCESS_KEY', env.S3_SECRET_ACCESS_KEY]] as const) {
      if (value.reveal() === 'S3RVER') out.push(`${name}: is the embedded test store's default key`);
    }
  }
  return out;
}

/** The witness's keys: 64 hex digits each, a valid secret key and a valid x-only public key. Never names a value. */
function witnessKeyProblems(env: Env): string[] {
  const out: string[] = [];
  const sk = env.WITNESS_SIGNING_KEY.reveal();
  if (!HEX_KEY.test(sk) || !isValidSecretKey(hexDecode(sk))) out.push('  WITNESS_SIGNING_KEY: must be 64 hex digits, a secp256k1 secret key in [1, n-1]');
  const pk = env.WITNESS_LOG_PUBLIC_KEY;
  if (!HEX_KEY.test(pk) || !isValidPublicKey(hexDecode(pk))) out.push('  WITNESS_LOG_PUBLIC_KEY: must be 64 hex digits, an x-only secp256k1 public key');
  return out;
}

/** KT_WITNESSES as `{ url, publicKey }` entries (url without trailing slash, key lower-case hex). */
function parseWitnesses(raw: string): { url: string; publicKey: string }[] {
  return raw
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)
    .map((e) => ({ url: e.slice(0, e.lastIndexOf('|')).replace(/\/+$/, ''), publicKey: e.slice(e.lastIndexOf('|') + 1).toLowerCase() }));
}

/** The log's settings, checked only where the log runs (key-directory). Never names a value. */
function ktProblems(env: Env): string[] {
  const out: string[] = [];
  const sk = env.KT_LOG_SIGNING_KEY.reveal();
  if (!HEX_KEY.test(sk) || !isValidSecretKey(hexDecode(sk.toLowerCase()))) out.push('  KT_LOG_SIGNING_KEY: must be 64 hex digits, a secp256k1 secret key in [1, n-1]');
  const entries = env.KT_WITNESSES.split(',').map((e) => e.trim()).filter(Boolean);
  if (!entries.every(isWitnessEntry)) out.push('  KT_WITNESSES: must be a comma-separated list of <http(s) url>|<witness public key, 64 hex>');
  const k = env.KT_WITNESS_QUORUM;
  if (k !== undefined && k > entries.length) out.push(`  KT_WITNESS_QUORUM: ${k} is more than the ${entries.length} witnesses of KT_WITNESSES`);
  if (k === 0 && entries.length > 0) out.push('  KT_WITNESS_QUORUM: 0 is allowed only with no KT_WITNESSES');
  return out;
}

/** Parse the environment once at boot; throw one readable error listing every bad variable. */
export function loadConfig(service: ServiceName, env: Record<string, string | undefined>): AppConfig {
  const parsed = ENV_SCHEMA.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(env)'}: ${i.message}`);
    throw new ConfigError(`invalid configuration for ${service}:\n${lines.join('\n')}`);
  }
  const ktIssues = service === 'key-directory' ? ktProblems(parsed.data) : [];
  if (ktIssues.length > 0) throw new ConfigError(`invalid configuration for ${service}:\n${ktIssues.join('\n')}`);
  const turnIssues = Boolean(parsed.data.TURN_SECRET) === parsed.data.TURN_URLS.length > 0 ? [] : ['  TURN_SECRET / TURN_URLS: set both (calls) or neither (no calls)'];
  if (turnIssues.length > 0) throw new ConfigError(`invalid configuration for ${service}:\n${turnIssues.join('\n')}`);
  const keyProblems = service === 'witness' ? witnessKeyProblems(parsed.data) : [];
  if (keyProblems.length > 0) throw new ConfigError(`invalid configuration for ${service}:\n${keyProblems.join('\n')}`);
  const refused = parsed.data.NODE_ENV === 'production' ? productionRefusals(service, parsed.data) : [];
  if (refused.length > 0) {
    throw new ConfigError(`refusing to start ${service} in production with default or placeholder secrets:\n${refused.map((l) => `  ${l}`).join('\n')}`);
  }
  const { PORT, INSTANCE_ID, ...rest } = parsed.data;
  return {
    ...rest,
    service,
    ktWitnesses: service === 'key-directory' ? parseWitnesses(rest.KT_WITNESSES) : [],
    port: PORT ?? (service === 'witness' ? rest.WITNESS_PORT : undefined) ?? DEFAULT_PORTS[service],
    instanceId: INSTANCE_ID ?? `${service}-${hostname().slice(0, 24)}-${randomBytes(4).toString('hex')}`,
  };
}

/** Where the shared Redis is: REDIS_CLUSTER_NODES when set (REDIS_URL lending its credentials and scheme), else REDIS_URL. */
export function redisTarget(config: Pick<AppConfig, 'REDIS_URL' | 'REDIS_CLUSTER_NODES'>): RedisTarget {
  return config.REDIS_CLUSTER_NODES?.length ? { url: config.REDIS_URL.reveal(), clusterNodes: config.REDIS_CLUSTER_NODES } : { url: config.REDIS_URL.reveal() };
}

/** Injection token of the typed config. */
export const APP_CONFIG = Symbol('APP_CONFIG');

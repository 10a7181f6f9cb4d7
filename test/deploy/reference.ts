import { DEFAULT_PORTS, ENV_SCHEMA, Metrics } from '@umbra/server';

/**
 * Generators for the reference tables of docs/operations.md (between the `<!-- generated:… -->`
 * markers): the configuration from ENV_SCHEMA and the metrics from libs/server's Metrics. The
 * docs test fails when the doc and these differ; `UMBRA_WRITE_DOCS=1` makes it rewrite them.
 * A new ENV_SCHEMA key needs a line in ENV_DOCS below (which services read it, and what it does).
 */

const ALL = 'all';
export const ENV_DOCS: Record<string, { services: string; description: string }> = {
  NODE_ENV: { services: ALL, description: '`production` in containers.' },
  PORT: { services: ALL, description: 'HTTP port (API, `/healthz`, `/readyz`, `/metrics`). Containers use 3000.' },
  HOST: { services: ALL, description: 'Bind address.' },
  INSTANCE_ID: { services: ALL, description: 'Name in logs and presence; k8s sets the pod name, compose the service name.' },
  LOG_LEVEL: { services: ALL, description: 'pino level; logs are JSON on stdout, never payloads, keys or tokens.' },
  DATABASE_URL: { services: ALL, description: '**Secret.** Postgres connection URL (`?sslmode=require` for managed databases).' },
  DATABASE_POOL_SIZE: { services: ALL, description: 'Postgres connections per process. Budget: Σ(replicas × pool) < `max_connections` (or use PgBouncer).' },
  REDIS_URL: { services: ALL, description: '**Secret.** Redis URL (`rediss://` for TLS). Needs `maxmemory-policy noeviction`.' },
  REDIS_PREFIX: { services: ALL, description: 'Key prefix of queues, pub/sub channels, rate limits and presence; one per deployment sharing a Redis.' },
  PUBLIC_ORIGIN: { services: ALL, description: 'The origin clients use (`scheme://host[:port]`); auth responses are bound to it.' },
  SHUTDOWN_GRACE_MS: { services: ALL, description: 'Drain budget after SIGTERM before a forced exit. Keep terminationGracePeriodSeconds above preStop + this.' },
  TRUST_PROXY: { services: ALL, description: 'Trust `X-Forwarded-For` from the ingress/nginx (client IPs for rate limits).' },
  TOKEN_TTL_S: { services: ALL, description: 'Lifetime of bearer tokens (every service verifies them).' },
  POW_DIFFICULTY: { services: 'key-directory', description: 'Proof-of-work bits required to register.' },
  MAX_RETENTION_S: { services: 'message-relay', description: 'Maximum life of an undelivered envelope, even without a timer.' },
  RELAY_CONCURRENCY: { services: 'message-relay', description: 'BullMQ jobs processed in parallel per relay process.' },
  RELAY_BATCH_MAX: { services: 'gateway', description: 'Sends per `relay` job (batching towards the relay).' },
  RELAY_BATCH_WAIT_MS: { services: 'gateway', description: 'Longest wait to fill a relay/ack batch.' },
  RELAY_TIMEOUT_MS: { services: 'gateway', description: 'How long a send waits for "stored" before answering `UNAVAILABLE`.' },
  SWEEP_INTERVAL_MS: { services: 'expiry-worker', description: 'Period of the retention/expiry sweep.' },
  SWEEP_BATCH: { services: 'expiry-worker', description: 'Rows deleted per sweep statement.' },
  EXPIRY_KEY_WINDOW_S: {
    services: 'gateway, message-relay, expiry-worker',
    description: 'Width of a crypto-shredding window: stored envelopes are sealed with the key of their deadline\'s window, destroyed when the window ends.',
  },
  EXPIRY_CONCURRENCY: { services: 'expiry-worker', description: 'Per-message expiry jobs one expiry-worker runs at once (they are coalesced into batched deletes).' },
  EXPIRY_BATCH_MAX: { services: 'expiry-worker', description: 'Messages expired per delete statement.' },
  RATE_LIMIT_REGISTER_PER_IP_PER_HOUR: { services: 'key-directory', description: 'Registrations per client IP per hour.' },
  RATE_LIMIT_REGISTER_PER_ACCOUNT_PER_HOUR: { services: 'key-directory', description: 'Registration attempts per account id per hour.' },
  RATE_LIMIT_CHALLENGE_PER_IP_PER_MINUTE: { services: 'gateway', description: 'Auth challenges per client IP per minute.' },
  RATE_LIMIT_TOKEN_PER_DEVICE_PER_MINUTE: { services: 'gateway', description: 'Token requests per device per minute.' },
  RATE_LIMIT_SEND_PER_DEVICE_PER_SECOND: { services: 'gateway', description: 'Sends per device per second.' },
  RATE_LIMIT_LOOKUP_PER_ACCOUNT_PER_MINUTE: { services: 'key-directory', description: 'Account/handle lookups per account per minute.' },
  RATE_LIMIT_ACCOUNT_CHANGES_PER_HOUR: { services: 'key-directory', description: 'Device-list and handle changes per account per hour.' },
  RATE_LIMIT_BUNDLE_FETCH_PER_ACCOUNT_PER_HOUR: { services: 'key-directory', description: 'Prekey bundle fetches per account per hour.' },
  RATE_LIMIT_ONE_TIME_KEYS_PER_PAIR_PER_HOUR: { services: 'key-directory', description: 'One-time prekeys one account may take from one device per hour.' },
  S3_ENDPOINT: { services: 'media-upload', description: 'S3-compatible endpoint; unset means AWS S3 (the local launcher then starts its embedded store).' },
  S3_REGION: { services: 'media-upload', description: 'S3 region.' },
  S3_BUCKET: { services: 'media-upload', description: 'Bucket of encrypted attachments.' },
  S3_ACCESS_KEY_ID: { services: 'media-upload', description: '**Secret.** S3 access key.' },
  S3_SECRET_ACCESS_KEY: { services: 'media-upload', description: '**Secret.** S3 secret key.' },
  S3_FORCE_PATH_STYLE: { services: 'media-upload', description: 'Path-style URLs (MinIO and most non-AWS stores need `true`).' },
  S3_PUBLIC_ENDPOINT: { services: 'media-upload', description: 'Endpoint clients reach, named in pre-signed URLs (defaults to `S3_ENDPOINT`; set it when services reach the store by an internal name).' },
  ATTACHMENT_MAX_BYTES: { services: 'media-upload', description: 'Largest encrypted attachment (esize) in bytes; at most 10,000 parts of `ATTACHMENT_PART_BYTES`.' },
  ATTACHMENT_MULTIPART_THRESHOLD_BYTES: { services: 'media-upload', description: 'Blobs of at least this size upload in parts; smaller ones with one pre-signed PUT.' },
  ATTACHMENT_PART_BYTES: { services: 'media-upload', description: 'Multipart part size (S3 minimum 5 MiB).' },
  ATTACHMENT_QUOTA_BYTES_PER_DAY: { services: 'media-upload', description: 'Attachment bytes one account may declare per UTC day (deleting does not give them back).' },
  ATTACHMENT_MAX_PENDING_UPLOADS: { services: 'media-upload', description: 'Unfinished uploads one account may have at once.' },
  ATTACHMENT_UPLOAD_TIMEOUT_S: { services: 'media-upload', description: 'An upload not completed within this is aborted and its parts removed.' },
  ATTACHMENT_UPLOAD_URL_TTL_S: { services: 'media-upload', description: 'Lifetime of pre-signed upload URLs (a resume gets fresh ones).' },
  ATTACHMENT_DOWNLOAD_URL_TTL_S: { services: 'media-upload', description: 'Lifetime of pre-signed download URLs.' },
  ATTACHMENT_REAP_INTERVAL_MS: { services: 'media-upload', description: 'Period of the cleanup of abandoned uploads and expired attachments (after `expiresAt` or `MAX_RETENTION_S`).' },
  ATTACHMENT_REAP_BATCH: { services: 'media-upload', description: 'Attachments deleted per cleanup batch.' },
};

function defaultOf(key: string): string {
  if (key === 'PORT') return `per service: ${Object.entries(DEFAULT_PORTS).map(([s, p]) => `${s} ${p}`).join(', ')}`;
  if (key === 'INSTANCE_ID') return '`<service>-<host>-<random>`';
  const field = (ENV_SCHEMA.shape as Record<string, { safeParse(v: unknown): { success: boolean; data?: unknown } }>)[key]!;
  const r = field.safeParse(undefined);
  if (!r.success) return '(required)';
  if (r.data === undefined) return '(unset)';
  const v = r.data as unknown;
  const text = typeof v === 'object' && v !== null && 'reveal' in v ? (v as { reveal(): string }).reveal() : String(v);
  return `\`${text}\``;
}

/** Keys of ENV_SCHEMA without a line in ENV_DOCS (the docs test fails on any). */
export const undocumentedEnv = (): string[] => Object.keys(ENV_SCHEMA.shape).filter((k) => !ENV_DOCS[k]);

export function envTable(): string {
  const rows = Object.keys(ENV_SCHEMA.shape).map((k) => {
    const d = ENV_DOCS[k] ?? { services: '?', description: 'UNDOCUMENTED: add it to ENV_DOCS in test/deploy/reference.ts' };
    return `| \`${k}\` | ${defaultOf(k)} | ${d.services} | ${d.description} |`;
  });
  return ['| variable | default | read by | meaning |', '|---|---|---|---|', ...rows].join('\n');
}

interface MetricInfo {
  name: string;
  type: string;
  help: string;
  labels: string[];
}

/** The metrics defined in libs/server/src/metrics/metrics.ts (without the prom-client process defaults). */
export function appMetrics(): MetricInfo[] {
  const m = new Metrics('doc', false);
  return m.registry.getMetricsAsArray().map((x) => {
    const raw = x as unknown as { name: string; type: string; help: string; labelNames?: string[] };
    return { name: raw.name, type: String(raw.type), help: raw.help, labels: [...(raw.labelNames ?? [])] };
  });
}

/** Every metric name a scrape can show: the app's, histogram series, and the `umbra_`-prefixed process defaults. */
export function knownSeries(): Set<string> {
  const m = new Metrics('doc', true);
  const names = new Set<string>();
  for (const x of m.registry.getMetricsAsArray()) {
    const raw = x as unknown as { name: string; type: string };
    names.add(raw.name);
    if (String(raw.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(raw.name + s);
  }
  return names;
}

export function metricsTable(): string {
  const rows = appMetrics().map((m) => `| \`${m.name}\` | ${m.type} | ${m.labels.length ? m.labels.map((l) => `\`${l}\``).join(', ') : '—'} | ${m.help} |`);
  return ['| metric | type | labels | meaning |', '|---|---|---|---|', ...rows].join('\n');
}

/** Replaces (or reads) the block between `<!-- generated:NAME -->` and `<!-- /generated:NAME -->`. */
export function generatedBlock(doc: string, name: string): string | undefined {
  const m = new RegExp(`<!-- generated:${name} -->\\n([\\s\\S]*?)\\n<!-- /generated:${name} -->`).exec(doc);
  return m?.[1];
}

export function withGeneratedBlock(doc: string, name: string, body: string): string {
  return doc.replace(new RegExp(`(<!-- generated:${name} -->\\n)[\\s\\S]*?(\\n<!-- /generated:${name} -->)`), (_a, open: string, close: string) => `${open}${body}${close}`);
}

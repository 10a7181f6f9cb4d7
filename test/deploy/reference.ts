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
  DATABASE_PREPARED_STATEMENTS: { services: ALL, description: 'Run the delivery path\'s store and ack statements as named prepared statements (planned once per connection). `false` behind a pooler in transaction mode that cannot keep them (PgBouncer before 1.21).' },
  ENVELOPE_PARTITIONS: {
    services: 'migrate',
    description: 'Hash partitions of the `envelopes` table (by recipient account), created by the migration that partitions it; changing it later repartitions nothing. See docs/scaling-postgres.md.',
  },
  REDIS_URL: { services: ALL, description: '**Secret.** Redis URL (`rediss://` for TLS). Needs `maxmemory-policy noeviction`.' },
  REDIS_COMMAND_TIMEOUT_MS: { services: ALL, description: 'A request-path Redis command (and a BullMQ job add) that takes longer fails, and the request answers 503 `UNAVAILABLE`; during an outage commands fail at once instead of queueing in memory.' },
  RATE_LIMIT_REDIS_URL: {
    services: 'gateway, key-directory',
    description: '**Secret.** Optional separate Redis for rate-limit counters (`maxmemory` with `volatile-ttl` or `allkeys-lru`), so counters can never fill the Redis BullMQ needs. Unset: `REDIS_URL`.',
  },
  REDIS_CLUSTER_NODES: {
    services: ALL,
    description:
      'Seed nodes of a Redis Cluster (`host:port,host:port,…`; Redis ≥ 7). Set: queues, pub/sub (sharded), presence, challenges and rate limits run on the cluster, and `REDIS_URL` lends only its credentials and `rediss:` scheme. Unset: the single Redis of `REDIS_URL`. See "Redis Cluster".',
  },
  REDIS_PREFIX: { services: ALL, description: 'Key prefix of queues, pub/sub channels, rate limits and presence; one per deployment sharing a Redis.' },
  PUBLIC_ORIGIN: { services: ALL, description: 'The origin clients use (`scheme://host[:port]`); auth responses are bound to it.' },
  SHUTDOWN_GRACE_MS: { services: ALL, description: 'Drain budget after SIGTERM before a forced exit. Keep terminationGracePeriodSeconds above preStop + this.' },
  TRUSTED_PROXIES: {
    services: ALL,
    description:
      'Comma-separated addresses/CIDRs (or `loopback`, `uniquelocal`) of the proxies whose `X-Forwarded-For` is believed; per-IP limits count the address the last of them saw. Default: the local edge only. Compose: nginx\'s fixed address; k8s: the ingress controller\'s pod CIDR. Empty: no proxy (services exposed directly).',
  },
  TOKEN_TTL_S: { services: ALL, description: 'Lifetime of bearer tokens (every service verifies them).' },
  POW_DIFFICULTY: { services: 'key-directory', description: 'Proof-of-work bits required to register.' },
  MAX_RETENTION_S: { services: 'message-relay', description: 'Maximum life of an undelivered envelope, even without a timer.' },
  RELAY_CONCURRENCY: { services: 'message-relay', description: 'BullMQ jobs processed in parallel per relay process.' },
  RELAY_BATCH_MAX: { services: 'gateway', description: 'Sends per `relay` job (batching towards the relay).' },
  RELAY_BATCH_WAIT_MS: { services: 'gateway', description: 'Longest a send waits to join a `relay` batch while the gateway\'s previous batch is still being stored (no wait when none is).' },
  RELAY_TIMEOUT_MS: { services: 'gateway', description: 'How long a send waits for "stored" before answering `UNAVAILABLE`.' },
  QUEUE_MAX_ENVELOPES_PER_DEVICE: { services: 'message-relay', description: 'Most envelopes queued for one recipient device; a send that would pass it for any recipient gets `QUEUE_FULL` (429) and is stored for none.' },
  QUEUE_MAX_BYTES_PER_DEVICE: { services: 'message-relay', description: 'Most stored envelope bytes queued for one recipient device (same rule as the count).' },
  DEVICE_SET_CACHE_TTL_MS: { services: 'gateway', description: 'Longest a gateway trusts its cached device lists when checking a send (sender and recipients); bounds how long a removed device can send if its revocation broadcast is lost.' },
  DELIVERY_CHECK_INTERVAL_MS: { services: 'gateway', description: 'How often the gateway checks, in one batched query, whether idle connected devices have queued envelopes they were never pushed (a lost pub/sub message) and drains them.' },
  PRESENCE_CHECK_INTERVAL_MS: { services: 'gateway', description: 'How often each gateway renews its Redis sentinel key (`<prefix>:gateway:<id>:alive`, one command). When the key is gone (Redis lost its data: `FLUSHALL`, a restart with nothing on disk), the gateway re-claims presence for all its sockets and re-drains them, so connected devices get pushes again within about this long.' },
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
  RATE_LIMIT_SEND_PER_DEVICE_PER_SECOND: { services: 'gateway', description: 'Sends per device per second (burst 2× this), REST and socket together, one Redis token bucket shared by every gateway.' },
  RATE_LIMIT_LOOKUP_PER_ACCOUNT_PER_MINUTE: { services: 'key-directory', description: 'Account/handle lookups per account per minute.' },
  RATE_LIMIT_ACCOUNT_CHANGES_PER_HOUR: { services: 'key-directory', description: 'Device-list and handle changes per account per hour.' },
  RATE_LIMIT_BUNDLE_FETCH_PER_ACCOUNT_PER_HOUR: { services: 'key-directory', description: 'Prekey bundle fetches per account per hour.' },
  RATE_LIMIT_ONE_TIME_KEYS_PER_PAIR_PER_HOUR: { services: 'key-directory', description: 'One-time prekeys one account may take from one device per hour.' },
  RATE_LIMIT_MAX_CLIENT_BUCKETS_PER_WINDOW: {
    services: 'gateway, key-directory',
    description: 'Distinct client addresses (IPv4, IPv6 /64) each per-address limit tracks per window; past it new addresses get 429 until the window ends (bounds what a flood of addresses can store in Redis).',
  },
  S3_ENDPOINT: { services: 'media-upload', description: 'S3-compatible endpoint; unset means AWS S3 (the local launcher then starts its embedded store).' },
  S3_REGION: { services: 'media-upload', description: 'S3 region.' },
  S3_BUCKET: { services: 'media-upload', description: 'Bucket of encrypted attachments.' },
  S3_ACCESS_KEY_ID: { services: 'media-upload', description: '**Secret.** S3 access key.' },
  S3_SECRET_ACCESS_KEY: { services: 'media-upload', description: '**Secret.** S3 secret key.' },
  S3_FORCE_PATH_STYLE: { services: 'media-upload', description: 'Path-style URLs (MinIO and most non-AWS stores need `true`).' },
  S3_PUBLIC_ENDPOINT: { services: 'media-upload', description: 'Endpoint clients reach, named in pre-signed URLs (defaults to `S3_ENDPOINT`; set it when services reach the store by an internal name).' },
  ATTACHMENT_MAX_BYTES: { services: 'media-upload', description: 'Largest encrypted attachment (esize) in bytes; at most 10,000 parts of `ATTACHMENT_PART_BYTES`.' },
  ATTACHMENT_MULTIPART_THRESHOLD_BYTES: { services: 'media-upload', description: 'Blobs of at least this size upload in `ATTACHMENT_PART_BYTES` parts; smaller ones in a single part (every upload is an S3 multipart upload, so completing it ends its URLs).' },
  ATTACHMENT_PART_BYTES: { services: 'media-upload', description: 'Multipart part size (S3 minimum 5 MiB).' },
  ATTACHMENT_QUOTA_BYTES_PER_DAY: { services: 'media-upload', description: 'Attachment bytes one account may store per UTC day: declared sizes are reserved at creation, and stored bytes beyond them are added at completion (deleting does not give them back).' },
  ATTACHMENT_MAX_PENDING_UPLOADS: { services: 'media-upload', description: 'Unfinished uploads one account may have at once.' },
  ATTACHMENT_UPLOAD_TIMEOUT_S: { services: 'media-upload', description: 'An upload not completed within this is aborted and its parts removed.' },
  ATTACHMENT_UPLOAD_URL_TTL_S: { services: 'media-upload', description: 'Lifetime of pre-signed upload URLs, at most 3600 and never past the upload deadline; the SDK fetches fresh ones when they lapse. S3 checks it when a PUT starts, so it must cover the wait before a part starts, not its transfer.' },
  ATTACHMENT_DOWNLOAD_URL_TTL_S: { services: 'media-upload', description: 'Lifetime of pre-signed download URLs.' },
  ATTACHMENT_REAP_INTERVAL_MS: { services: 'media-upload', description: 'Period of the cleanup of abandoned uploads and expired attachments (after `expiresAt` or `MAX_RETENTION_S`).' },
  ATTACHMENT_REAP_BATCH: { services: 'media-upload', description: 'Attachments deleted per cleanup batch.' },
  WITNESS_SIGNING_KEY: {
    services: 'witness',
    description: "**Secret.** The witness's secp256k1 signing key (64 hex); its public key is what log operators and clients pin. The default is the development key, which production refuses.",
  },
  WITNESS_LOG_PUBLIC_KEY: { services: 'witness', description: 'Public key (64 hex) of the key-transparency log this witness follows; heads of any other log get 403. The default is the development log key, which production refuses.' },
  WITNESS_PORT: { services: 'witness', description: 'HTTP port of the witness when `PORT` is unset (default 3005).' },
  WITNESS_RATE_LIMIT_PER_IP_PER_MINUTE: { services: 'witness', description: 'Requests to the witness API per client address per minute (0: unlimited).' },
  KT_LOG_SIGNING_KEY: {
    services: 'key-directory',
    description: "**Secret.** The key-transparency log's secp256k1 signing key (64 hex): it signs every tree head and lookup; its public key is what clients and witnesses pin. The default is the development key, which production refuses. Rotating it starts a new log (docs/key-transparency.md).",
  },
  KT_WITNESSES: { services: 'key-directory', description: 'Witnesses the log pushes each tree head to: comma-separated `<url>\\|<witness public key, 64 hex>` (docs/key-transparency.md). Production needs at least one.' },
  KT_WITNESS_QUORUM: { services: 'key-directory', description: 'Distinct witness cosignatures a tree head needs before it is served (unset: 1 with witnesses, 0 without; 0 is refused in production and with witnesses).' },
  KT_MMD_MS: { services: 'key-directory', description: 'Maximum merge delay promised to clients (accepted statement → leaf); a statement queued longer is logged as `kt.mmd-exceeded`.' },
  KT_STH_INTERVAL_MS: { services: 'key-directory', description: 'Longest time between signed tree heads when nothing is appended (a new head follows every appended batch at once).' },
  KT_SEQUENCE_INTERVAL_MS: { services: 'key-directory', description: 'How often each instance tries to take the sequencer lock, append queued statements and push the newest head to the witnesses.' },
  KT_SEQUENCE_BATCH: { services: 'key-directory', description: 'Most statements appended per sequencer transaction.' },
  KT_WITNESS_TIMEOUT_MS: { services: 'key-directory', description: 'Timeout of one push to a witness.' },
  KT_LOOKUP_FLOOR_MS: { services: 'key-directory', description: 'Least time a `GET /v1/kt/lookup` answer takes, found or not, so timing does not tell whether a label exists.' },
  TURN_SECRET: { services: 'gateway', description: 'Shared secret of the TURN relay (coturn `static-auth-secret`, at least 16 characters); with `TURN_URLS`, enables `GET /v1/calls/relays`. Unset: calls are off (`CALLS_NOT_CONFIGURED`). `npm start` sets both for its embedded coturn.' },
  TURN_URLS: { services: 'gateway', description: 'Comma-separated `turn:`/`turns:` URIs clients use for the relay (e.g. `turn:turn.example.com:3478?transport=udp`).' },
  TURN_CREDENTIAL_TTL_S: { services: 'gateway', description: 'Lifetime of issued TURN credentials (60 s – 1 d). coturn checks the expiry on every allocation and refresh, so keep it longer than a call.' },
  RATE_LIMIT_TURN_PER_ACCOUNT_PER_HOUR: { services: 'gateway', description: 'TURN credential requests per account per hour.' },
  RATE_LIMIT_KT_LOOKUP_PER_IP_PER_MINUTE: { services: 'key-directory', description: 'Key-transparency reads (lookup, monitor, leaves, consistency) per client address per minute.' },
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

/** Socket-level failures: the peer is down, unreachable, reset the connection or did not answer. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT']);
/** Postgres SQLSTATEs of an unavailable server: connection exceptions (08…), shutdown and start-up, too many connections, out of resources. */
const PG_UNAVAILABLE = /^(08[0-9A-Z]{3}|57P0[1-3]|53[0-9]00)$/;
/** ioredis and pg messages of a connection that is gone, never made, or over its time budget. */
const MESSAGES = [
  /^Connection is closed\.?$/,
  /^Stream isn't writeable and enableOfflineQueue options is false/,
  /^Command timed out$/,
  /^Reached the max retries per request limit/,
  // ioredis Cluster: no node reachable, slot map unknown, or a failover outlasting its redirections.
  /^Cluster isn't ready and enableOfflineQueue options is false/,
  /^None of startup nodes is available/,
  /^Failed to refresh slots cache/,
  /^Too many Cluster redirections/,
  /^Connection terminated( unexpectedly| due to connection timeout)?$/,
  /^timeout exceeded when trying to connect$/,
  /^Client has encountered a connection error and is not queryable$/,
  // A socket error's text, also where a wrapper kept only the text (the AWS SDK across realms).
  /\b(connect|read|write|getaddrinfo) (ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN|ENOTFOUND)\b/,
];
/** Redis replies that mean "not now": out of memory (noeviction), loading, a read-only replica, busy, no client slots, failover. */
const REDIS_REPLIES = /^(OOM|LOADING|READONLY|BUSY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN|ERR max number of clients reached)/;

interface Probe {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  cause?: unknown;
  driverError?: unknown;
  $metadata?: { httpStatusCode?: unknown };
}

function isUnavailable(err: unknown, depth: number): boolean {
  if (depth > 4 || !err || typeof err !== 'object') return false;
  const e = err as Probe;
  const name = typeof e.name === 'string' ? e.name : '';
  const code = typeof e.code === 'string' ? e.code : '';
  const message = typeof e.message === 'string' ? e.message : '';
  if (NETWORK_CODES.has(code)) return true;
  if (PG_UNAVAILABLE.test(code)) return true;
  if (name === 'MaxRetriesPerRequestError' || name === 'ClusterAllFailedError') return true;
  if (name === 'ReplyError' && REDIS_REPLIES.test(message)) return true;
  if (MESSAGES.some((m) => m.test(message))) return true;
  // AWS SDK v3: server faults and throttling carry an HTTP status; network failures have none.
  const status = e.$metadata?.httpStatusCode;
  if (typeof status === 'number' && (status >= 500 || status === 429)) return true;
  if (e.$metadata && (name === 'TimeoutError' || name === 'RequestTimeout')) return true;
  if (name === 'TimeoutError' && /timed out|timeout/i.test(message)) return true;
  return isUnavailable(e.driverError, depth + 1) || isUnavailable(e.cause, depth + 1);
}

/**
 * Whether an error means Postgres, Redis or S3 is down, full or too slow (connection refused, reset or
 * timed out, ioredis giving up, Redis OOM, pg shutdown/too-many-connections/08xxx, S3 5xx) rather than
 * a bug. Looks through TypeORM's `driverError` and `cause` chains.
 */
export function isInfrastructureFailure(err: unknown): boolean {
  return isUnavailable(err, 0);
}

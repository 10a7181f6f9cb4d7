import { ApiError, RETRY_AFTER_UNAVAILABLE_S, retryAfterOf, toErrorBody, unavailableFrom } from './api-error';

/** Builds an error the way the drivers do: a class name, a message, and their own fields. */
function driverError(name: string, message: string, fields: Record<string, unknown> = {}): Error {
  const err = new Error(message);
  Object.defineProperty(err, 'name', { value: name });
  return Object.assign(err, fields);
}

describe('infrastructure errors become 503 UNAVAILABLE with Retry-After', () => {
  const unavailable: [string, unknown][] = [
    ['connection refused', driverError('Error', 'connect ECONNREFUSED 127.0.0.1:6390', { code: 'ECONNREFUSED', syscall: 'connect' })],
    ['connection reset', driverError('Error', 'read ECONNRESET', { code: 'ECONNRESET' })],
    ['socket timeout', driverError('Error', 'connect ETIMEDOUT', { code: 'ETIMEDOUT' })],
    ['broken pipe', driverError('Error', 'write EPIPE', { code: 'EPIPE' })],
    ['DNS failure', driverError('Error', 'getaddrinfo EAI_AGAIN redis', { code: 'EAI_AGAIN' })],
    ['ioredis MaxRetriesPerRequestError', driverError('MaxRetriesPerRequestError', 'Reached the max retries per request limit (which is 1).')],
    ['ioredis closed connection', driverError('Error', 'Connection is closed.')],
    ['ioredis offline queue disabled', driverError('Error', "Stream isn't writeable and enableOfflineQueue options is false")],
    ['ioredis command timeout', driverError('Error', 'Command timed out')],
    ['ioredis Cluster not ready', driverError('Error', "Cluster isn't ready and enableOfflineQueue options is false")],
    ['ioredis Cluster without a reachable node', driverError('ClusterAllFailedError', 'Failed to refresh slots cache.')],
    ['ioredis Cluster startup', driverError('Error', 'None of startup nodes is available')],
    ['ioredis Cluster failover outlasting the redirections', driverError('Error', 'Too many Cluster redirections. Last error: Error: Connection is closed.')],
    ['Redis Cluster down', driverError('ReplyError', 'CLUSTERDOWN The cluster is down')],
    ['Redis OOM', driverError('ReplyError', "OOM command not allowed when used memory > 'maxmemory'.")],
    ['Redis loading', driverError('ReplyError', 'LOADING Redis is loading the dataset in memory')],
    ['Redis read-only replica', driverError('ReplyError', "READONLY You can't write against a read only replica.")],
    ['Redis busy script', driverError('ReplyError', 'BUSY Redis is busy running a script.')],
    ['Redis client paused/max clients', driverError('ReplyError', 'ERR max number of clients reached')],
    ['pg admin shutdown 57P01', driverError('error', 'terminating connection due to administrator command', { code: '57P01' })],
    ['pg too many connections 53300', driverError('error', 'sorry, too many clients already', { code: '53300' })],
    ['pg connection exception 08006', driverError('error', 'connection failure', { code: '08006' })],
    ['pg cannot connect now 57P03', driverError('error', 'the database system is starting up', { code: '57P03' })],
    ['pg connection terminated', driverError('Error', 'Connection terminated unexpectedly')],
    ['pg pool timeout', driverError('Error', 'timeout exceeded when trying to connect')],
    ['TypeORM wrapping a pg error', driverError('QueryFailedError', 'terminating connection due to administrator command', { driverError: { code: '57P01' } })],
    ['S3 5xx', driverError('InternalError', 'We encountered an internal error', { $metadata: { httpStatusCode: 500 }, $fault: 'server' })],
    ['S3 slow down', driverError('SlowDown', 'Please reduce your request rate', { $metadata: { httpStatusCode: 503 } })],
    ['S3 network error', driverError('Error', 'connect ECONNREFUSED 127.0.0.1:9000', { code: 'ECONNREFUSED', $metadata: {} })],
    ['S3 network error, wrapped as text', driverError('Error', 'AWS SDK error wrapper for Error: connect ECONNREFUSED 127.0.0.1:9000')],
    ['S3 socket timeout', driverError('TimeoutError', 'Connection timed out after 1000 ms')],
    ['wrapped in a cause', Object.assign(new Error('relay enqueue failed'), { cause: driverError('Error', 'connect ECONNREFUSED', { code: 'ECONNREFUSED' }) })],
  ];
  it.each(unavailable)('%s', (_name, err) => {
    const mapped = unavailableFrom(err);
    expect(mapped).toBeInstanceOf(ApiError);
    expect(mapped).toMatchObject({ code: 'UNAVAILABLE', status: 503, details: { retryAfterS: RETRY_AFTER_UNAVAILABLE_S } });
    expect(retryAfterOf(mapped)).toBe(RETRY_AFTER_UNAVAILABLE_S);
    const { status, body, internal } = toErrorBody(err, 'cid');
    expect({ status, code: body.error.code, internal }).toEqual({ status: 503, code: 'UNAVAILABLE', internal: false });
    // The driver's message (host names, ports, SQL) never reaches the client.
    expect(body.error.message).not.toMatch(/127\.0\.0\.1|ECONN|administrator|maxmemory/);
  });

  const notInfrastructure: [string, unknown][] = [
    ['a programming error', new TypeError("Cannot read properties of undefined (reading 'x')")],
    ['a constraint violation', driverError('QueryFailedError', 'duplicate key value violates unique constraint', { code: '23505', driverError: { code: '23505' } })],
    ['a syntax error', driverError('error', 'syntax error at or near', { code: '42601' })],
    ['a Redis script error', driverError('ReplyError', 'ERR Error running script')],
    ['S3 access denied', driverError('AccessDenied', 'Access Denied', { $metadata: { httpStatusCode: 403 }, $fault: 'client' })],
    ['a string', 'boom'],
    ['null', null],
  ];
  it.each(notInfrastructure)('%s stays INTERNAL', (_name, err) => {
    expect(unavailableFrom(err)).toBeUndefined();
    expect(toErrorBody(err).status).toBe(500);
  });

  it('keeps an ApiError as it is', () => {
    expect(toErrorBody(new ApiError('RATE_LIMITED', 'slow down', { retryAfterS: 9 })).status).toBe(429);
  });
});

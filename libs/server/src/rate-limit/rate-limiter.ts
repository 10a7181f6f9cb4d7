import { ApiError } from '../errors/api-error';
import type { RedisClient } from '../redis/redis';
import { isClientBucket } from './client-address';

// KEYS[1] the counter, KEYS[2] the census of the bucket's client addresses in this window.
// ARGV[1] window ms, ARGV[2] most client addresses per window (0: not an address bucket).
// A new address over the census cap gets no counter: {-1, ttl of the census}.
const FIXED_WINDOW = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  local cap = tonumber(ARGV[2])
  if cap > 0 then
    local c = redis.call('INCR', KEYS[2])
    if c == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[1]) end
    if c > cap then
      redis.call('DEL', KEYS[1])
      return {-1, redis.call('PTTL', KEYS[2])}
    end
  end
end
return {n, redis.call('PTTL', KEYS[1])}`;

/**
 * Fixed-window counters in Redis, shared by every instance of every service. Every key expires with
 * its window. Buckets keyed by client address (clientBucket ids) also count the distinct addresses per
 * window: past `maxClientBuckets`, new addresses are refused until the window ends, so the keys an
 * unauthenticated client can create are bounded however many addresses it has.
 */
export class RateLimiter {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly onLimited: (bucket: string) => void = () => undefined,
    private readonly maxClientBuckets = 0,
  ) {}

  private async count(bucket: string, id: string, windowMs: number): Promise<[number, number]> {
    // One hash tag per bucket keeps a counter and its census in one cluster slot.
    const base = `${this.prefix}:rl:{${bucket}}`;
    const cap = isClientBucket(id) ? this.maxClientBuckets : 0;
    return (await this.redis.eval(FIXED_WINDOW, 2, `${base}:${id}`, `${base}:#addresses`, windowMs, cap)) as [number, number];
  }

  /** Counts one hit; false once more than `limit` hits were counted in the current window. */
  async tryHit(bucket: string, id: string, limit: number, windowMs: number): Promise<boolean> {
    if (limit <= 0) return true;
    const [count] = await this.count(bucket, id, windowMs);
    return count !== -1 && count <= limit;
  }

  /** Counts one hit; throws RATE_LIMITED when `limit` hits have been counted in the current window. */
  async hit(bucket: string, id: string, limit: number, windowMs: number): Promise<void> {
    if (limit <= 0) return;
    const [count, ttl] = await this.count(bucket, id, windowMs);
    if (count === -1 || count > limit) {
      this.onLimited(bucket);
      const retryAfterS = Math.max(1, Math.ceil(ttl / 1000));
      const why = count === -1 ? 'too many clients' : 'rate limit';
      throw new ApiError('RATE_LIMITED', `${why} for ${bucket} exceeded; retry in ${retryAfterS} s`, { retryAfterS });
    }
  }
}

/** In-process token bucket for the hot path (one socket per device per gateway). */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly ratePerS: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.last = now;
  }

  take(now: number, n = 1): boolean {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.ratePerS);
    this.last = now;
    if (this.tokens < n) return false;
    this.tokens -= n;
    return true;
  }
}

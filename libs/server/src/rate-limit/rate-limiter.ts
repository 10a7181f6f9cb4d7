import { ApiError } from '../errors/api-error';
import type { Redis } from '../redis/redis';

const FIXED_WINDOW = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {n, redis.call('PTTL', KEYS[1])}`;

/** Fixed-window counters in Redis, shared by every instance of every service. */
export class RateLimiter {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly onLimited: (bucket: string) => void = () => undefined,
  ) {}

  /** Counts one hit; false once more than `limit` hits were counted in the current window. */
  async tryHit(bucket: string, id: string, limit: number, windowMs: number): Promise<boolean> {
    if (limit <= 0) return true;
    const [count] = (await this.redis.eval(FIXED_WINDOW, 1, `${this.prefix}:rl:${bucket}:${id}`, windowMs)) as [number, number];
    return count <= limit;
  }

  /** Counts one hit; throws RATE_LIMITED when `limit` hits have been counted in the current window. */
  async hit(bucket: string, id: string, limit: number, windowMs: number): Promise<void> {
    if (limit <= 0) return;
    const [count, ttl] = (await this.redis.eval(FIXED_WINDOW, 1, `${this.prefix}:rl:${bucket}:${id}`, windowMs)) as [number, number];
    if (count > limit) {
      this.onLimited(bucket);
      const retryAfterS = Math.max(1, Math.ceil(ttl / 1000));
      throw new ApiError('RATE_LIMITED', `rate limit for ${bucket} exceeded; retry in ${retryAfterS} s`, { retryAfterS });
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

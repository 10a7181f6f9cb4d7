import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, ApiError, Metrics, RATE_LIMIT_REDIS, type AppConfig, type AuthContext, type Redis } from '@umbra/server';

// A token bucket per device in one Redis hash, refilled by elapsed Redis time (gateways' clocks may
// differ). KEYS[1] the bucket; ARGV[1] tokens per second, ARGV[2] burst. Returns {1, 0} when a token
// was taken, else {0, ms until one is available}. The key expires once the bucket would be full again.
const TAKE = `
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1]) or burst
local at = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
local taken = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  taken = 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / rate) + 1000)
return {taken, wait}`;

type SendTakeRedis = Redis & { umbraSendTake(key: string, rate: number, burst: number): Promise<unknown> };

/**
 * The per-device send limit (RATE_LIMIT_SEND_PER_DEVICE_PER_SECOND, burst 2× this): one bucket in
 * Redis shared by every gateway and by REST and socket sends alike; one round trip per send. It lives
 * with the other rate-limit counters (RATE_LIMIT_REDIS_URL when set), never in BullMQ's memory budget.
 */
@Injectable()
export class SendLimiter {
  private readonly rate: number;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(RATE_LIMIT_REDIS) private readonly redis: Redis,
    @Inject(Metrics) private readonly metrics: Metrics,
  ) {
    this.rate = config.RATE_LIMIT_SEND_PER_DEVICE_PER_SECOND;
    // EVALSHA (EVAL only when Redis lost the script): the script's text is not written on every send.
    if (!('umbraSendTake' in redis)) redis.defineCommand('umbraSendTake', { numberOfKeys: 1, lua: TAKE });
  }

  /** Takes one send from the device's bucket; RATE_LIMITED (with retryAfterS) when it is empty. */
  async take(auth: AuthContext): Promise<void> {
    if (this.rate <= 0) return;
    const key = `${this.config.REDIS_PREFIX}:rl:send:${auth.accountId.toString('hex')}:${auth.deviceId}`;
    const [taken, waitMs] = (await (this.redis as SendTakeRedis).umbraSendTake(key, this.rate, this.rate * 2)) as [number, number];
    if (taken === 1) return;
    this.metrics.rateLimited.inc({ bucket: 'send' });
    const retryAfterS = Math.max(1, Math.ceil(waitMs / 1000));
    throw new ApiError('RATE_LIMITED', `too many sends from this device; retry in ${retryAfterS} s`, { retryAfterS });
  }
}

import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, ApiError, Metrics, RATE_LIMIT_REDIS, type AppConfig, type AuthContext, type Redis } from '@umbra/server';

// A token bucket per device in one Redis hash, refilled by elapsed Redis time (gateways' clocks may
// differ). KEYS[1] the bucket; ARGV[1] tokens per second, ARGV[2] burst, ARGV[3] most tokens to take.
// Takes as many as it has whole tokens for, up to ARGV[3]: returns {taken, 0}, or {0, ms until one is
// available}. The key expires once the bucket would be full again.
const TAKE = `
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1]) or burst
local at = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
local taken = math.min(want, math.floor(tokens))
local wait = 0
if taken >= 1 then
  tokens = tokens - taken
else
  taken = 0
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / rate) + 1000)
return {taken, wait}`;

/** How long tokens taken ahead stay usable on the gateway that took them; the rest are forfeited. */
export const SEND_LEASE_MS = 1000;
/** Most leases kept; past it, expired ones are swept (a lease is a few dozen bytes). */
const MAX_LEASES = 100_000;

interface Lease {
  tokens: number;
  until: number;
}

type SendTakeRedis = Redis & { umbraSendTake(key: string, rate: number, burst: number, want: number): Promise<unknown> };

/**
 * The per-device send limit (RATE_LIMIT_SEND_PER_DEVICE_PER_SECOND, burst 2× this): one bucket in
 * Redis shared by every gateway and by REST and socket sends alike. It lives with the other
 * rate-limit counters (RATE_LIMIT_REDIS_URL when set), never in BullMQ's memory budget.
 *
 * A gateway takes up to a sixteenth of the burst at once and spends it locally for SEND_LEASE_MS; what
 * it has not spent by then is forfeited. Tokens leave the shared bucket when they are taken, so the
 * limit holds across gateways exactly as before, and a device sending steadily costs about one Redis
 * round trip per second instead of one per send. Below a burst of 32 every take is one token.
 */
@Injectable()
export class SendLimiter {
  private readonly rate: number;
  private readonly burst: number;
  private readonly leaseSize: number;
  private readonly leases = new Map<string, Lease>();

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(RATE_LIMIT_REDIS) private readonly redis: Redis,
    @Inject(Metrics) private readonly metrics: Metrics,
  ) {
    this.rate = config.RATE_LIMIT_SEND_PER_DEVICE_PER_SECOND;
    this.burst = this.rate * 2;
    this.leaseSize = Math.max(1, Math.floor(this.burst / 16));
    // EVALSHA (EVAL only when Redis lost the script): the script's text is not written on every send.
    if (!('umbraSendTake' in redis)) redis.defineCommand('umbraSendTake', { numberOfKeys: 1, lua: TAKE });
  }

  /** Takes one send from the device's bucket; RATE_LIMITED (with retryAfterS) when it is empty. */
  async take(auth: AuthContext): Promise<void> {
    if (this.rate <= 0) return;
    const key = `${this.config.REDIS_PREFIX}:rl:send:${auth.accountId.toString('hex')}:${auth.deviceId}`;
    const lease = this.leases.get(key);
    if (lease && lease.tokens >= 1 && lease.until > Date.now()) {
      lease.tokens--;
      return;
    }
    const [taken, waitMs] = (await (this.redis as SendTakeRedis).umbraSendTake(key, this.rate, this.burst, this.leaseSize)) as [number, number];
    if (taken >= 1) {
      if (taken > 1) this.lease(key, taken - 1);
      return;
    }
    this.metrics.rateLimited.inc({ bucket: 'send' });
    const retryAfterS = Math.max(1, Math.ceil(waitMs / 1000));
    throw new ApiError('RATE_LIMITED', `too many sends from this device; retry in ${retryAfterS} s`, { retryAfterS });
  }

  private lease(key: string, tokens: number): void {
    const now = Date.now();
    if (this.leases.size >= MAX_LEASES) {
      for (const [k, l] of this.leases) if (l.until <= now) this.leases.delete(k);
      if (this.leases.size >= MAX_LEASES) this.leases.delete(this.leases.keys().next().value!);
    }
    // Tokens of an earlier lease still unspent stay with it (a concurrent take); the newer lease replaces it.
    const left = this.leases.get(key);
    this.leases.set(key, { tokens: tokens + (left && left.until > now ? left.tokens : 0), until: now + SEND_LEASE_MS });
  }
}

import { Inject, Injectable } from '@nestjs/common';
import { LIMITS } from '@umbra/protocol';
import { APP_CONFIG, ApiError, REDIS, RateLimiter, type AppConfig, type AuthContext, type Redis } from '@umbra/server';

/**
 * Sets the message of a channel for its poster: the first account to post owns the channel (a retry
 * by that account replaces the message); another account gets 0. Owner and message expire together.
 */
const PUT_MESSAGE = `
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
return 1`;

/**
 * A short-lived mailbox for device linking (PROTOCOL.md §1). It holds only the ProvisioningMessage,
 * encrypted to the new device's ephemeral key, and the LinkReply signature; both expire. The
 * channel belongs to the account that posted the message: only it may read the reply, and the
 * first reply wins (a later one cannot replace the one the holder is about to verify).
 */
@Injectable()
export class ProvisioningService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(RateLimiter) private readonly limiter: RateLimiter,
  ) {}

  /** One hash slot per channel (`{channel}`), so the script and MGET work on a Redis Cluster too. */
  private key(channel: string, part: 'owner' | 'message' | 'reply'): string {
    return `${this.config.REDIS_PREFIX}:prov:{${channel}}:${part}`;
  }

  async putMessage(auth: AuthContext, channel: string, message: string): Promise<void> {
    await this.limiter.hit('provisioning', auth.accountIdText, 30, 3600_000);
    const set = await this.redis.eval(PUT_MESSAGE, 2, this.key(channel, 'owner'), this.key(channel, 'message'), auth.accountIdText, message, LIMITS.PROVISIONING_TTL_S);
    if (set !== 1) throw new ApiError('PROVISIONING_CHANNEL_TAKEN', 'another account has posted on this channel');
  }

  async getMessage(channel: string, ip: string): Promise<{ message: string }> {
    await this.limiter.hit('provisioning-poll', ip, 1200, 60_000);
    const message = await this.redis.get(this.key(channel, 'message'));
    if (!message) throw new ApiError('NOT_FOUND', 'no provisioning message on this channel yet');
    return { message };
  }

  async putReply(channel: string, reply: string, ip: string): Promise<void> {
    await this.limiter.hit('provisioning-reply', ip, 30, 3600_000);
    const ttl = await this.redis.ttl(this.key(channel, 'message'));
    if (ttl <= 0) throw new ApiError('NOT_FOUND', 'no open link on this channel');
    const set = await this.redis.set(this.key(channel, 'reply'), reply, 'EX', ttl, 'NX');
    if (set !== 'OK') throw new ApiError('PROVISIONING_REPLY_EXISTS', 'this channel already has its reply');
  }

  /** The reply, for the account that posted the message only (anyone else: as if there were none). */
  async getReply(auth: AuthContext, channel: string): Promise<{ reply: string }> {
    const [owner, reply] = await this.redis.mget(this.key(channel, 'owner'), this.key(channel, 'reply'));
    if (owner !== auth.accountIdText) throw new ApiError('NOT_FOUND', 'no provisioning message of yours on this channel');
    if (!reply) throw new ApiError('NOT_FOUND', 'no reply on this channel yet');
    return { reply };
  }
}

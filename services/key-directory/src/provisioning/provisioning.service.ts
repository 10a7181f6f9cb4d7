import { Inject, Injectable } from '@nestjs/common';
import { LIMITS } from '@umbra/protocol';
import { APP_CONFIG, ApiError, REDIS, RateLimiter, type AppConfig, type AuthContext, type Redis } from '@umbra/server';

/**
 * A short-lived mailbox for device linking (PROTOCOL.md §1). It holds only the ProvisioningMessage,
 * encrypted to the new device's ephemeral key, and the LinkReply signature; both expire.
 */
@Injectable()
export class ProvisioningService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(RateLimiter) private readonly limiter: RateLimiter,
  ) {}

  private key(channel: string, part: 'message' | 'reply'): string {
    return `${this.config.REDIS_PREFIX}:prov:${channel}:${part}`;
  }

  async putMessage(auth: AuthContext, channel: string, message: string): Promise<void> {
    await this.limiter.hit('provisioning', auth.accountIdText, 30, 3600_000);
    await this.redis.set(this.key(channel, 'message'), message, 'EX', LIMITS.PROVISIONING_TTL_S);
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
    await this.redis.set(this.key(channel, 'reply'), reply, 'EX', ttl);
  }

  async getReply(channel: string): Promise<{ reply: string }> {
    const reply = await this.redis.get(this.key(channel, 'reply'));
    if (!reply) throw new ApiError('NOT_FOUND', 'no reply on this channel yet');
    return { reply };
  }
}

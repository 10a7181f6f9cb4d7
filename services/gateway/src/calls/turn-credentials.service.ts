import { createHmac } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { TurnCredentials } from '@umbra/protocol';
import { APP_CONFIG, ApiError, Clock, RateLimiter, type AppConfig, type AuthContext, type Secret } from '@umbra/server';

const HOUR = 3_600_000;

/**
 * TURN credentials by the TURN REST API scheme that coturn checks with `use-auth-secret`: the
 * username is "<unix expiry>:<opaque id>", the password base64(HMAC-SHA1(secret, username)). The
 * opaque id is an HMAC of the account id, so it is stable per account (coturn's per-user quota
 * applies) and tells the TURN operator nothing about who calls.
 */
@Injectable()
export class TurnCredentialsService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(RateLimiter) private readonly limiter: RateLimiter,
    @Inject(Clock) private readonly clock: Clock,
  ) {}

  async issue(auth: AuthContext): Promise<TurnCredentials> {
    const secret = this.config.TURN_SECRET;
    if (!secret) throw new ApiError('CALLS_NOT_CONFIGURED', 'this server runs no TURN relay; calls are not available');
    await this.limiter.hit('turn', auth.accountIdText, this.config.RATE_LIMIT_TURN_PER_ACCOUNT_PER_HOUR, HOUR);
    const ttlSeconds = this.config.TURN_CREDENTIAL_TTL_S;
    const expiry = Math.floor(this.clock.now() / 1000) + ttlSeconds;
    const username = `${expiry}:${opaqueUser(secret, auth.accountIdText)}`;
    return { username, password: turnPassword(secret, username), ttlSeconds, urls: this.config.TURN_URLS };
  }
}

export function opaqueUser(secret: Secret, accountIdText: string): string {
  return createHmac('sha256', secret.reveal()).update(`umbra-turn-user:${accountIdText}`).digest('base64url').slice(0, 22);
}

export function turnPassword(secret: Secret, username: string): string {
  return createHmac('sha1', secret.reveal()).update(username).digest('base64');
}

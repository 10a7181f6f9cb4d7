import { Inject, Injectable } from '@nestjs/common';
import { encodeAccountId } from '@umbra/crypto';
import { LIMITS, type ChallengeResponse, type TokenResponse } from '@umbra/protocol';
import {
  APP_CONFIG,
  AccountsRepository,
  ApiError,
  AuthResponseVerifier,
  ChallengeStore,
  Clock,
  Metrics,
  RateLimiter,
  TokenService,
  type AppConfig,
} from '@umbra/server';

@Injectable()
export class AuthService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(ChallengeStore) private readonly challenges: ChallengeStore,
    @Inject(AuthResponseVerifier) private readonly verifier: AuthResponseVerifier,
    @Inject(AccountsRepository) private readonly accounts: AccountsRepository,
    @Inject(TokenService) private readonly tokens: TokenService,
    @Inject(RateLimiter) private readonly limiter: RateLimiter,
    @Inject(Clock) private readonly clock: Clock,
    @Inject(Metrics) private readonly metrics: Metrics,
  ) {}

  async challenge(ip: string): Promise<ChallengeResponse> {
    await this.limiter.hit('challenge-ip', ip, this.config.RATE_LIMIT_CHALLENGE_PER_IP_PER_MINUTE, 60_000);
    const nonce = await this.challenges.issue('auth', LIMITS.AUTH_CHALLENGE_TTL_S);
    return { nonce: Buffer.from(nonce).toString('base64url'), expiresAt: this.clock.now() + LIMITS.AUTH_CHALLENGE_TTL_S * 1000 };
  }

  async token(authResponseB64: string, ip: string): Promise<TokenResponse> {
    await this.limiter.hit('token-ip', ip, this.config.RATE_LIMIT_CHALLENGE_PER_IP_PER_MINUTE, 60_000);
    try {
      const { accountId, deviceId } = await this.verifier.verify(Buffer.from(authResponseB64, 'base64url'), async (acct, dev) => {
        const device = await this.accounts.findDevice(acct, dev);
        if (device) return device.dik;
        return (await this.accounts.findById(acct)) ? 'no-device' : 'no-account';
      });
      await this.limiter.hit('token-device', `${Buffer.from(accountId).toString('hex')}:${deviceId}`, this.config.RATE_LIMIT_TOKEN_PER_DEVICE_PER_MINUTE, 60_000);
      const issued = await this.tokens.issue(accountId, deviceId);
      return { ...issued, accountId: encodeAccountId(accountId), deviceId };
    } catch (err) {
      if (err instanceof ApiError) this.metrics.authFailures.inc({ reason: err.code });
      throw err;
    }
  }
}

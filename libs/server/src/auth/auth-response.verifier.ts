import { CryptoError, parseAuthResponse, verifyAuthResponse } from '@umbra/crypto';
import { LIMITS } from '@umbra/protocol';
import { ApiError } from '../errors/api-error';
import type { ChallengeStore } from './challenge.store';
import type { Clock } from '../core/clock';

export type DikLookup = (accountId: Uint8Array, deviceId: number) => Promise<Uint8Array | 'no-account' | 'no-device'>;

/** The server side of PROTOCOL.md §1 "Server authentication". */
export class AuthResponseVerifier {
  constructor(
    private readonly challenges: ChallengeStore,
    private readonly clock: Clock,
    private readonly origin: string,
  ) {}

  async verify(bytes: Uint8Array, lookupDik: DikLookup): Promise<{ accountId: Uint8Array; deviceId: number }> {
    let resp: ReturnType<typeof parseAuthResponse>;
    try {
      resp = parseAuthResponse(bytes);
    } catch (err) {
      if (err instanceof CryptoError && err.code === 'UNSUPPORTED_SUITE') throw new ApiError('UNSUPPORTED_SUITE', 'unsupported suite');
      throw new ApiError('BAD_AUTH_RESPONSE', `malformed AuthResponse${err instanceof CryptoError ? `: ${err.message}` : ''}`);
    }
    if ((await this.challenges.consume('auth', resp.nonce)) === null) {
      throw new ApiError('AUTH_CHALLENGE_INVALID', 'challenge unknown, expired or already used');
    }
    if (resp.origin !== this.origin) throw new ApiError('WRONG_ORIGIN', `signed for another origin; this server is ${this.origin}`);
    if (Math.abs(resp.clientTime - this.clock.now()) > LIMITS.AUTH_CLOCK_SKEW_S * 1000) {
      throw new ApiError('CLOCK_SKEW', `client_time differs from server time by more than ${LIMITS.AUTH_CLOCK_SKEW_S} s`);
    }
    const dik = await lookupDik(resp.accountId, resp.deviceId);
    if (dik === 'no-account') throw new ApiError('ACCOUNT_NOT_FOUND', 'no such account');
    if (dik === 'no-device') throw new ApiError('DEVICE_NOT_IN_LIST', "device is not in the account's current list");
    if (!verifyAuthResponse(resp, dik)) throw new ApiError('BAD_SIGNATURE', 'AuthResponse signature does not verify');
    return { accountId: resp.accountId, deviceId: resp.deviceId };
  }
}

import { createHash, randomBytes } from 'node:crypto';
import { encodeAccountId } from '@umbra/crypto';
import { ApiError } from '../errors/api-error';
import type { TokensRepository } from '../database/tokens.repository';
import type { Clock } from '../core/clock';

export interface AuthContext {
  accountId: Buffer;
  accountIdText: string;
  deviceId: number;
  expiresAt: number;
  /** SHA-256 of the bearer token (what Postgres stores), so a long-lived socket can re-check it (TokenService.stillValid). */
  tokenHash?: Buffer;
  /** When the token was last found valid (ms). */
  verifiedAt?: number;
}

const TOKEN_PREFIX = 'umb1.';

function hashToken(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

/** Opaque bearer tokens: 32 random bytes; Postgres keeps only their SHA-256. */
export class TokenService {
  constructor(
    private readonly tokens: TokensRepository,
    private readonly clock: Clock,
    private readonly ttlS: number,
  ) {}

  async issue(accountId: Uint8Array, deviceId: number): Promise<{ token: string; expiresAt: number }> {
    const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
    const expiresAt = this.clock.now() + this.ttlS * 1000;
    await this.tokens.insert(hashToken(token), accountId, deviceId, expiresAt);
    return { token, expiresAt };
  }

  async verify(token: string | undefined): Promise<AuthContext> {
    if (!token) throw new ApiError('UNAUTHENTICATED', 'bearer token required');
    if (!token.startsWith(TOKEN_PREFIX) || token.length !== TOKEN_PREFIX.length + 43) throw new ApiError('TOKEN_INVALID', 'token not recognised');
    const row = await this.tokens.findByHash(hashToken(token));
    if (!row) throw new ApiError('TOKEN_INVALID', 'token not recognised');
    if (row.expiresAt <= this.clock.now()) throw new ApiError('TOKEN_EXPIRED', 'token expired; authenticate again');
    return { accountId: row.accountId, accountIdText: encodeAccountId(row.accountId), deviceId: row.deviceId, expiresAt: row.expiresAt, tokenHash: hashToken(token), verifiedAt: this.clock.now() };
  }

  /**
   * Re-checks a verified context's token when its last check is older than `maxAgeMs`: removing or
   * re-keying a device deletes its tokens, so a socket opened before that learns it here.
   * One primary-key lookup per context per `maxAgeMs`; TOKEN_INVALID when it is gone (expiry is the
 * connection's own timer).
   */
  async stillValid(auth: AuthContext, maxAgeMs: number): Promise<void> {
    const now = this.clock.now();
    if (!auth.tokenHash || (auth.verifiedAt !== undefined && now - auth.verifiedAt < maxAgeMs)) return;
    const row = await this.tokens.findByHash(auth.tokenHash);
    if (!row || row.deviceId !== auth.deviceId || !row.accountId.equals(auth.accountId)) throw new ApiError('TOKEN_INVALID', 'token no longer valid (device removed or re-keyed); authenticate again');
    auth.verifiedAt = now;
  }
}

export function bearerFrom(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer ([A-Za-z0-9._-]{1,200})$/.exec(header);
  return m ? m[1] : '';
}

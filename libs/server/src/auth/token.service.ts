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
    return { accountId: row.accountId, accountIdText: encodeAccountId(row.accountId), deviceId: row.deviceId, expiresAt: row.expiresAt };
  }
}

export function bearerFrom(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer ([A-Za-z0-9._-]{1,200})$/.exec(header);
  return m ? m[1] : '';
}

import type { DataSource } from 'typeorm';
import { affectedRows } from './types';

export interface TokenRow {
  accountId: Buffer;
  deviceId: number;
  expiresAt: number;
}

/** Bearer tokens by their SHA-256; the token itself is never stored. */
export class TokensRepository {
  constructor(private readonly ds: DataSource) {}

  async insert(tokenHash: Uint8Array, accountId: Uint8Array, deviceId: number, expiresAt: number): Promise<void> {
    await this.ds.query(`INSERT INTO auth_tokens (token_hash, account_id, device_id, expires_at) VALUES ($1, $2, $3, $4)`, [
      Buffer.from(tokenHash),
      Buffer.from(accountId),
      deviceId,
      expiresAt,
    ]);
  }

  async findByHash(tokenHash: Uint8Array): Promise<TokenRow | undefined> {
    const rows: TokenRow[] = await this.ds.query(
      `SELECT account_id AS "accountId", device_id AS "deviceId", expires_at AS "expiresAt" FROM auth_tokens WHERE token_hash = $1`,
      [Buffer.from(tokenHash)],
    );
    return rows[0];
  }

  async deleteExpired(now: number, limit: number): Promise<number> {
    return affectedRows(
      await this.ds.query(
        `DELETE FROM auth_tokens WHERE token_hash IN (SELECT token_hash FROM auth_tokens WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`,
        [now, limit],
      ),
    );
  }
}

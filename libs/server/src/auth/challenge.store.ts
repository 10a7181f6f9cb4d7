import { randomBytes } from 'node:crypto';
import type { RedisClient } from '../redis/redis';

/** Single-use random nonces with a TTL (auth challenges, proof-of-work challenges). */
export class ChallengeStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
  ) {}

  async issue(kind: 'auth' | 'pow', ttlS: number, value = '1'): Promise<Uint8Array> {
    const nonce = randomBytes(32);
    await this.redis.set(`${this.prefix}:${kind}:${nonce.toString('hex')}`, value, 'EX', ttlS);
    return nonce;
  }

  /** Returns the stored value and deletes it, atomically: a nonce can be used once. */
  async consume(kind: 'auth' | 'pow', nonce: Uint8Array): Promise<string | null> {
    return this.redis.getdel(`${this.prefix}:${kind}:${Buffer.from(nonce).toString('hex')}`);
  }
}

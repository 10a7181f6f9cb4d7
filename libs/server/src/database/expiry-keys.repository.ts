import { randomBytes } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { affectedRows } from './types';

/**
 * Keys of expiry windows, for crypto-shredding at rest. Window `w` covers deadlines in
 * ((w − 1)·size, w·size]; its key exists only while w·size is in the future, so once the sweep
 * destroys it every copy of an envelope of that window (WAL, replica, backup) is unreadable.
 * The keys never leave this class and the sealer: never logged, never in an error.
 */
export class ExpiryKeysRepository {
  constructor(private readonly ds: DataSource) {}

  /** The key of `windowId`, created if missing. Callers must never ask for a window that has ended. */
  async getOrCreate(windowId: number): Promise<Buffer> {
    const existing = await this.get(windowId);
    if (existing) return existing;
    await this.ds.query(`INSERT INTO expiry_keys (window_id, key) VALUES ($1, $2) ON CONFLICT (window_id) DO NOTHING`, [windowId, randomBytes(32)]);
    const created = await this.get(windowId);
    if (!created) throw new Error(`expiry key ${windowId} vanished while being created`);
    return created;
  }

  async get(windowId: number): Promise<Buffer | undefined> {
    const rows: { key: Buffer }[] = await this.ds.query(`SELECT key FROM expiry_keys WHERE window_id = $1`, [windowId]);
    return rows[0]?.key;
  }

  /** Destroys the keys of every window that ended at or before `now`. */
  async destroyEnded(now: number, windowMs: number): Promise<number> {
    return affectedRows(await this.ds.query(`DELETE FROM expiry_keys WHERE window_id * $2::bigint <= $1`, [now, windowMs]));
  }

  async count(): Promise<number> {
    const rows: { n: number }[] = await this.ds.query(`SELECT count(*)::int AS n FROM expiry_keys`);
    return rows[0]?.n ?? 0;
  }
}

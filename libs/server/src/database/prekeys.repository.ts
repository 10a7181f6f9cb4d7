import type { DataSource } from 'typeorm';
import { returnedRows, type DeviceAddress } from './types';

/** PROTOCOL.md §2 kinds, as stored. */
export const PrekeyKind = { SPK: 1, OPK: 2, PQOPK: 3, PQLR: 4 } as const;

export interface StoredPrekey {
  keyId: number;
  record: Uint8Array;
}

export interface PrekeyUpload {
  signedPreKey?: StoredPrekey;
  lastResortKemPreKey?: StoredPrekey;
  oneTimePreKeys: StoredPrekey[];
  oneTimeKemPreKeys: StoredPrekey[];
}

export interface PrekeyCounts {
  oneTimePreKeys: number;
  oneTimeKemPreKeys: number;
  signedPreKey: boolean;
  lastResortKemPreKey: boolean;
}

export interface ClaimedPrekeys {
  signedPreKey: Buffer;
  oneTimePreKey?: Buffer;
  kemPreKey: Buffer;
}

const buf = (x: Uint8Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);

/** One store per key lifetime, every query keyed by the owning device. */
export class PrekeysRepository {
  constructor(private readonly ds: DataSource) {}

  /** Adds one-time keys (an id already present is kept, not replaced) and replaces the SPK / last-resort key. */
  async upload(device: DeviceAddress, up: PrekeyUpload): Promise<void> {
    const a = buf(device.accountId);
    await this.ds.transaction(async (tx) => {
      for (const [kind, key] of [[PrekeyKind.SPK, up.signedPreKey], [PrekeyKind.PQLR, up.lastResortKemPreKey]] as const) {
        if (!key) continue;
        await tx.query(`DELETE FROM prekeys WHERE account_id = $1 AND device_id = $2 AND kind = $3`, [a, device.deviceId, kind]);
        await tx.query(`INSERT INTO prekeys (account_id, device_id, kind, key_id, record) VALUES ($1, $2, $3, $4, $5)`, [a, device.deviceId, kind, key.keyId, buf(key.record)]);
      }
      for (const [kind, keys] of [[PrekeyKind.OPK, up.oneTimePreKeys], [PrekeyKind.PQOPK, up.oneTimeKemPreKeys]] as const) {
        if (keys.length === 0) continue;
        await tx.query(
          `INSERT INTO prekeys (account_id, device_id, kind, key_id, record)
           SELECT $1, $2, $3, k, r FROM unnest($4::bigint[], $5::bytea[]) AS x(k, r)
           ON CONFLICT DO NOTHING`,
          [a, device.deviceId, kind, keys.map((k) => k.keyId), keys.map((k) => buf(k.record))],
        );
      }
    });
  }

  async counts(device: DeviceAddress): Promise<PrekeyCounts> {
    const rows: { kind: number; n: number }[] = await this.ds.query(
      `SELECT kind, count(*)::int AS n FROM prekeys WHERE account_id = $1 AND device_id = $2 GROUP BY kind`,
      [buf(device.accountId), device.deviceId],
    );
    const n = (k: number) => rows.find((r) => r.kind === k)?.n ?? 0;
    return { oneTimePreKeys: n(PrekeyKind.OPK), oneTimeKemPreKeys: n(PrekeyKind.PQOPK), signedPreKey: n(PrekeyKind.SPK) > 0, lastResortKemPreKey: n(PrekeyKind.PQLR) > 0 };
  }

  /**
   * The keys for one bundle. One-time keys (when `takeOneTime`) are deleted as they are handed out,
   * each to exactly one caller even under concurrency (row locks, SKIP LOCKED); without a one-time
   * KEM key the last-resort one is served. Undefined when the device has no SPK or no KEM key.
   */
  async claim(device: DeviceAddress, takeOneTime: boolean): Promise<ClaimedPrekeys | undefined> {
    const a = buf(device.accountId);
    const take = async (kind: number): Promise<Buffer | undefined> => {
      const rows = returnedRows<{ record: Buffer }>(
        await this.ds.query(
        `DELETE FROM prekeys WHERE (account_id, device_id, kind, key_id) =
           (SELECT account_id, device_id, kind, key_id FROM prekeys WHERE account_id = $1 AND device_id = $2 AND kind = $3
            ORDER BY key_id LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING record`,
          [a, device.deviceId, kind],
        ),
      );
      return rows[0]?.record;
    };
    const current = async (kind: number): Promise<Buffer | undefined> => {
      const rows: { record: Buffer }[] = await this.ds.query(
        `SELECT record FROM prekeys WHERE account_id = $1 AND device_id = $2 AND kind = $3 ORDER BY created_at DESC LIMIT 1`,
        [a, device.deviceId, kind],
      );
      return rows[0]?.record;
    };
    const signedPreKey = await current(PrekeyKind.SPK);
    if (!signedPreKey) return undefined;
    const oneTimePreKey = takeOneTime ? await take(PrekeyKind.OPK) : undefined;
    const kemPreKey = (takeOneTime ? await take(PrekeyKind.PQOPK) : undefined) ?? (await current(PrekeyKind.PQLR));
    if (!kemPreKey) return undefined;
    return { signedPreKey, ...(oneTimePreKey ? { oneTimePreKey } : {}), kemPreKey };
  }
}

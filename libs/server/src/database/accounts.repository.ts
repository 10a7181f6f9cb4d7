import type { DataSource, EntityManager } from 'typeorm';
import { affectedRows } from './types';

export interface DeviceRow {
  deviceId: number;
  dik: Buffer;
  flags: number;
  createdAtMs: number;
}

export interface AccountRow {
  id: Buffer;
  aik: Buffer;
  suite: number;
  listVersion: number;
  deviceList: Buffer;
  handle: string | null;
  handleClaim: Buffer | null;
  handleClaimVersion: number;
}

export interface NewAccount {
  id: Uint8Array;
  aik: Uint8Array;
  suite: number;
  listVersion: number;
  deviceList: Uint8Array;
  devices: DeviceRow[];
}

const ACCOUNT_COLUMNS = `id, aik, suite, list_version AS "listVersion", device_list AS "deviceList", handle,
  handle_claim AS "handleClaim", handle_claim_version AS "handleClaimVersion"`;

function b(x: Uint8Array): Buffer {
  return Buffer.from(x.buffer, x.byteOffset, x.byteLength);
}

/** Accounts and their current devices. Every query is keyed by account id. */
export class AccountsRepository {
  constructor(private readonly ds: DataSource) {}

  /** Inserts the account and its devices; false when the account id already exists. */
  async create(account: NewAccount): Promise<boolean> {
    return this.ds.transaction(async (tx) => {
      const inserted: unknown[] = await tx.query(
        `INSERT INTO accounts (id, aik, suite, list_version, device_list) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (id) DO NOTHING RETURNING id`,
        [b(account.id), b(account.aik), account.suite, account.listVersion, b(account.deviceList)],
      );
      if (inserted.length === 0) return false;
      await this.insertDevices(tx, account.id, account.devices);
      return true;
    });
  }

  async findById(accountId: Uint8Array): Promise<AccountRow | undefined> {
    const rows: AccountRow[] = await this.ds.query(`SELECT ${ACCOUNT_COLUMNS} FROM accounts WHERE id = $1`, [b(accountId)]);
    return rows[0];
  }

  async findByHandle(handle: string): Promise<AccountRow | undefined> {
    const rows: AccountRow[] = await this.ds.query(`SELECT ${ACCOUNT_COLUMNS} FROM accounts WHERE handle = $1`, [handle]);
    return rows[0];
  }

  async devices(accountId: Uint8Array): Promise<DeviceRow[]> {
    return this.ds.query(
      `SELECT device_id AS "deviceId", dik, flags, created_at_ms AS "createdAtMs" FROM devices WHERE account_id = $1 ORDER BY device_id`,
      [b(accountId)],
    );
  }

  async findDevice(accountId: Uint8Array, deviceId: number): Promise<DeviceRow | undefined> {
    const rows: DeviceRow[] = await this.ds.query(
      `SELECT device_id AS "deviceId", dik, flags, created_at_ms AS "createdAtMs" FROM devices WHERE account_id = $1 AND device_id = $2`,
      [b(accountId), deviceId],
    );
    return rows[0];
  }

  /** Current device ids of each account; accounts that do not exist are absent from the map. */
  async deviceSets(accountIds: Uint8Array[]): Promise<Map<string, { listVersion: number; deviceIds: number[] }>> {
    const rows: { id: Buffer; listVersion: number; deviceIds: number[] | null }[] = await this.ds.query(
      `SELECT a.id, a.list_version AS "listVersion", array_agg(d.device_id ORDER BY d.device_id) AS "deviceIds"
       FROM accounts a LEFT JOIN devices d ON d.account_id = a.id
       WHERE a.id = ANY($1::bytea[]) GROUP BY a.id`,
      [accountIds.map(b)],
    );
    return new Map(rows.map((r) => [r.id.toString('hex'), { listVersion: r.listVersion, deviceIds: (r.deviceIds ?? []).filter((x) => x !== null).map(Number) }]));
  }

  /**
   * Replaces the device list when `listVersion` is newer than the stored one. Removed devices lose
   * their tokens (cascade) and their queued envelopes in the same transaction.
   */
  async replaceDeviceList(
    accountId: Uint8Array,
    next: { listVersion: number; deviceList: Uint8Array; devices: DeviceRow[] },
  ): Promise<{ ok: true; removed: number[]; added: number[] } | { ok: false; currentVersion: number }> {
    return this.ds.transaction(async (tx) => {
      const rows: { listVersion: number }[] = await tx.query(
        `SELECT list_version AS "listVersion" FROM accounts WHERE id = $1 FOR UPDATE`,
        [b(accountId)],
      );
      const current = rows[0];
      if (!current) return { ok: false, currentVersion: 0 };
      if (next.listVersion <= current.listVersion) return { ok: false, currentVersion: current.listVersion };
      const before: { deviceId: number; dik: Buffer }[] = await tx.query(
        `SELECT device_id AS "deviceId", dik FROM devices WHERE account_id = $1`,
        [b(accountId)],
      );
      const nextById = new Map(next.devices.map((d) => [d.deviceId, d]));
      const beforeIds = new Set(before.map((d) => d.deviceId));
      const removed = before.filter((d) => !nextById.has(d.deviceId)).map((d) => d.deviceId);
      // A device id that comes back with another DIK is a new device: the old one's tokens and queue go.
      const rekeyed = before.filter((d) => nextById.has(d.deviceId) && !d.dik.equals(b(nextById.get(d.deviceId)!.dik))).map((d) => d.deviceId);
      const added = next.devices.filter((d) => !beforeIds.has(d.deviceId)).map((d) => d.deviceId);
      const dropped = [...removed, ...rekeyed];
      if (dropped.length > 0) {
        await tx.query(`DELETE FROM devices WHERE account_id = $1 AND device_id = ANY($2::bigint[])`, [b(accountId), dropped]);
        await tx.query(`DELETE FROM envelopes WHERE recipient_account = $1 AND recipient_device = ANY($2::bigint[])`, [b(accountId), dropped]);
      }
      await this.insertDevices(tx, accountId, next.devices);
      await tx.query(`UPDATE accounts SET list_version = $2, device_list = $3, updated_at = now() WHERE id = $1`, [
        b(accountId),
        next.listVersion,
        b(next.deviceList),
      ]);
      return { ok: true, removed: dropped.sort((x, y) => x - y), added: added.sort((x, y) => x - y) };
    });
  }

  /** Sets the handle; 'taken' when another account holds it, 'stale' when the claim version does not grow. */
  async setHandle(accountId: Uint8Array, handle: string, claim: Uint8Array, claimVersion: number): Promise<'ok' | 'taken' | 'stale'> {
    return this.ds.transaction(async (tx) => {
      const rows: { v: number }[] = await tx.query(`SELECT handle_claim_version AS v FROM accounts WHERE id = $1 FOR UPDATE`, [b(accountId)]);
      if (!rows[0] || claimVersion <= rows[0].v) return 'stale';
      const owner: { id: Buffer }[] = await tx.query(`SELECT id FROM accounts WHERE handle = $1`, [handle]);
      if (owner[0] && !owner[0].id.equals(b(accountId))) return 'taken';
      try {
        await tx.query(
          `UPDATE accounts SET handle = $2, handle_claim = $3, handle_claim_version = $4, updated_at = now() WHERE id = $1`,
          [b(accountId), handle, b(claim), claimVersion],
        );
      } catch (err) {
        if ((err as { code?: string }).code === '23505') return 'taken';
        throw err;
      }
      return 'ok';
    });
  }

  async releaseHandle(accountId: Uint8Array): Promise<boolean> {
    const result: unknown = await this.ds.query(
      `UPDATE accounts SET handle = NULL, handle_claim = NULL, updated_at = now() WHERE id = $1 AND handle IS NOT NULL`,
      [b(accountId)],
    );
    return affectedRows(result) > 0;
  }

  private async insertDevices(tx: EntityManager, accountId: Uint8Array, devices: DeviceRow[]): Promise<void> {
    if (devices.length === 0) return;
    await tx.query(
      `INSERT INTO devices (account_id, device_id, dik, flags, created_at_ms)
       SELECT $1, d.device_id, d.dik, d.flags, d.created_at_ms
       FROM unnest($2::bigint[], $3::bytea[], $4::bigint[], $5::bigint[]) AS d(device_id, dik, flags, created_at_ms)
       ON CONFLICT (account_id, device_id) DO UPDATE SET flags = EXCLUDED.flags, created_at_ms = EXCLUDED.created_at_ms`,
      [b(accountId), devices.map((d) => d.deviceId), devices.map((d) => d.dik), devices.map((d) => d.flags), devices.map((d) => d.createdAtMs)],
    );
  }
}

import type { DataSource } from 'typeorm';
import { byteaArray } from './binary-array';
import type { EnvelopeSealer } from './envelope-sealer';
import { HotStatements } from './hot-statements';
import { buf, ENVELOPE_COLUMNS, openRows, type EnvelopeRow, type MessageKey, type StoredEnvelope } from './envelope-row.mapper';
import { affectedRows, type DeviceAddress } from './types';

// Statements that join `envelopes` to a list of devices also filter `recipient_account = ANY(<the
// accounts>)`: implied by the join, but it is what lets the planner (and Citus) skip the partitions
// of other accounts instead of probing all of them.

/** (recipient, seq) pairs as the three parallel arrays an unnest($1::bytea[], $2::bigint[], $3::bigint[]) takes. */
function seqColumns(items: { recipient: DeviceAddress; seqs: string[] }[]): [Buffer[], number[], string[]] {
  const a: Buffer[] = [];
  const d: number[] = [];
  const s: string[] = [];
  for (const item of items) {
    for (const seq of item.seqs) {
      a.push(buf(item.recipient.accountId));
      d.push(item.recipient.deviceId);
      s.push(seq);
    }
  }
  return [a, d, s];
}

/**
 * One recipient device's queue, as the gateway reads it and the relay acks it. Every query is scoped
 * by the recipient device, so on the partitioned table it touches one partition per device. What
 * this class returns is always the client's bytes (opened with EnvelopeSealer).
 */
export class DeviceQueueRepository {
  constructor(
    private readonly ds: DataSource,
    private readonly sealer: EnvelopeSealer,
    private readonly hot = new HotStatements(ds, true),
  ) {}

  /** A page of one device's queue in server order; never returns an envelope whose deadline has passed. */
  async fetchPage(recipient: DeviceAddress, afterSeq: string, limit: number, now: number): Promise<{ envelopes: StoredEnvelope[]; more: boolean }> {
    const rows: EnvelopeRow[] = await this.ds.query(
      `SELECT ${ENVELOPE_COLUMNS} FROM envelopes
       WHERE recipient_account = $1 AND recipient_device = $2 AND seq > $3 AND delete_at > $4
       ORDER BY envelopes.seq LIMIT $5`,
      [buf(recipient.accountId), recipient.deviceId, afterSeq, now, limit + 1],
    );
    const more = rows.length > limit;
    return { envelopes: await openRows(this.sealer, rows.slice(0, limit), now, () => recipient), more };
  }

  /**
   * The head (lowest live seq, as text) of each device's queue: one indexed probe per device, all in
   * one statement. Devices whose queue is empty are left out.
   */
  async queueHeads(recipients: DeviceAddress[], now: number): Promise<{ recipient: DeviceAddress; seq: string }[]> {
    if (recipients.length === 0) return [];
    const rows: { a: Buffer; d: number; seq: string }[] = await this.ds.query(
      `SELECT x.a, x.d, h.seq::text AS seq
       FROM unnest($1::bytea[], $2::bigint[]) AS x(a, d)
       CROSS JOIN LATERAL (
         SELECT seq FROM envelopes
         WHERE recipient_account = x.a AND recipient_device = x.d AND delete_at > $3
         ORDER BY seq LIMIT 1
       ) h`,
      [recipients.map((r) => buf(r.accountId)), recipients.map((r) => r.deviceId), now],
    );
    return rows.map((r) => ({ recipient: { accountId: r.a, deviceId: Number(r.d) }, seq: r.seq }));
  }

  /** Which of these envelopes are still stored (each looked up by primary key, scoped by its recipient device). */
  async stillStored(items: { recipient: DeviceAddress; seqs: string[] }[]): Promise<{ recipient: DeviceAddress; seq: string }[]> {
    const [a, d, s] = seqColumns(items);
    if (s.length === 0) return [];
    // A LATERAL probe per id: a join here was hashed over whole partitions once a few thousand rows were queued.
    const rows: { a: Buffer; d: number; seq: string }[] = await this.ds.query(
      `SELECT x.a, x.d, e.seq::text AS seq FROM unnest($1::bytea[], $2::bigint[], $3::bigint[]) AS x(a, d, s)
       CROSS JOIN LATERAL (
         SELECT seq FROM envelopes WHERE recipient_account = x.a AND recipient_device = x.d AND seq = x.s LIMIT 1
       ) e`,
      [a, d, s],
    );
    return rows.map((r) => ({ recipient: { accountId: r.a, deviceId: Number(r.d) }, seq: r.seq }));
  }

  /**
   * Deletes acknowledged envelopes; each seq only if it belongs to the device that acked it. One
   * primary-key probe per id in its account's partition (`umbra_delete_acked`, migration AckByPrimaryKey).
   */
  async ack(items: { recipient: DeviceAddress; seqs: string[] }[]): Promise<number> {
    const [a, d, s] = seqColumns(items);
    if (s.length === 0) return 0;
    const r = await this.hot.query<{ n: string }>('umbra_ack_v2', 'SELECT umbra_delete_acked($1::bytea[], $2::bigint[], $3::bigint[]) AS n', [byteaArray(a), d, s]);
    return Number(r.rows[0]?.n ?? 0);
  }

  /**
   * A read report (PROTOCOL.md §8): lowers the deadline of this device's read-mode copies to
   * min(deadline, now + read_ttl) and reseals them under the earlier window. Returns the new deadlines.
   */
  async lowerOnRead(recipient: DeviceAddress, seqs: string[], now: number): Promise<{ message: MessageKey; deleteAt: number }[]> {
    if (seqs.length === 0) return [];
    const rows: EnvelopeRow[] = await this.ds.query(
      `SELECT ${ENVELOPE_COLUMNS} FROM envelopes
       WHERE recipient_account = $1 AND recipient_device = $2 AND seq = ANY($3::bigint[]) AND read_ttl_s > 0 AND delete_at > $4`,
      [buf(recipient.accountId), recipient.deviceId, seqs, now],
    );
    const out: { message: MessageKey; deleteAt: number }[] = [];
    for (const r of rows) {
      const deleteAt = Math.min(r.deleteAt, now + r.readTtlS * 1000);
      if (deleteAt >= r.deleteAt) continue;
      const content = await this.sealer.open(r.keyWindow, now, recipient, r.clientMessageId, r.content);
      if (!content) continue;
      const sealed = await this.sealer.seal(deleteAt, now, recipient, r.clientMessageId, content);
      const updated = affectedRows(
        await this.ds.query(
          `UPDATE envelopes SET delete_at = $4, content = $5, key_window = $6
           WHERE seq = $1 AND recipient_account = $2 AND recipient_device = $3 AND delete_at > $4`,
          [r.seq, buf(recipient.accountId), recipient.deviceId, deleteAt, sealed.sealed, sealed.window],
        ),
      );
      if (updated > 0 && r.senderAccount && r.senderDevice !== null) {
        out.push({ message: { sender: { accountId: r.senderAccount, deviceId: r.senderDevice }, clientMessageId: r.clientMessageId }, deleteAt });
      }
    }
    return out;
  }

  async queueDepth(recipient: DeviceAddress): Promise<number> {
    const rows: { n: number }[] = await this.ds.query(
      `SELECT count(*)::int AS n FROM envelopes WHERE recipient_account = $1 AND recipient_device = $2`,
      [buf(recipient.accountId), recipient.deviceId],
    );
    return rows[0]?.n ?? 0;
  }
}

import type { DataSource } from 'typeorm';
import { affectedRows, type DeviceAddress } from './types';

export interface StoreRecipient {
  accountId: Uint8Array;
  deviceId: number;
  type: number;
  content: Uint8Array;
}

export interface StoreSend {
  sender: DeviceAddress;
  clientMessageId: Uint8Array;
  expiresAt: number;
  readTtlS: number;
  recipients: StoreRecipient[];
}

export interface StoredEnvelope {
  seq: number;
  recipient: DeviceAddress;
  sender: DeviceAddress | null;
  clientMessageId: Uint8Array;
  type: number;
  content: Uint8Array;
  serverTimestamp: number;
  expiresAt: number;
  readTtlS: number;
}

export interface StoreResult {
  serverTimestamp: number;
  duplicate: boolean;
  envelopes: StoredEnvelope[];
}

interface EnvelopeRow {
  seq: number;
  recipientAccount: Buffer;
  recipientDevice: number;
  senderAccount: Buffer | null;
  senderDevice: number | null;
  clientMessageId: Buffer;
  type: number;
  content: Buffer;
  serverTimestamp: number;
  expiresAt: number;
  readTtlS: number;
}

const ENVELOPE_COLUMNS = `seq, recipient_account AS "recipientAccount", recipient_device AS "recipientDevice",
  sender_account AS "senderAccount", sender_device AS "senderDevice", client_message_id AS "clientMessageId",
  type, content, server_timestamp AS "serverTimestamp", expires_at AS "expiresAt", read_ttl_s AS "readTtlS"`;

function toEnvelope(r: EnvelopeRow): StoredEnvelope {
  return {
    seq: r.seq,
    recipient: { accountId: r.recipientAccount, deviceId: r.recipientDevice },
    sender: r.senderAccount && r.senderDevice !== null ? { accountId: r.senderAccount, deviceId: r.senderDevice } : null,
    clientMessageId: r.clientMessageId,
    type: r.type,
    content: r.content,
    serverTimestamp: r.serverTimestamp,
    expiresAt: r.expiresAt,
    readTtlS: r.readTtlS,
  };
}

const buf = (x: Uint8Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);
const sendKey = (sender: DeviceAddress, cmid: Uint8Array) => `${buf(sender.accountId).toString('hex')}:${sender.deviceId}:${buf(cmid).toString('hex')}`;

/**
 * The message store. Reads and deletes are scoped by the recipient device; writes come in batches
 * (one transaction, one multi-row insert per table).
 */
export class EnvelopesRepository {
  constructor(private readonly ds: DataSource) {}

  /** Stores a batch of sends, idempotently on (sender device, clientMessageId). Results follow the input order. */
  async storeBatch(sends: StoreSend[], now: number, retentionMs: number): Promise<StoreResult[]> {
    const firstIndex = new Map<string, number>();
    sends.forEach((s, i) => {
      const k = sendKey(s.sender, s.clientMessageId);
      if (!firstIndex.has(k)) firstIndex.set(k, i);
    });
    const unique = [...firstIndex.values()].map((i) => sends[i]!);
    const deleteAt = (s: StoreSend) => (s.expiresAt > 0 ? Math.min(s.expiresAt, now + retentionMs) : now + retentionMs);

    const cols = {
      sa: [] as Buffer[], sd: [] as number[], c: [] as Buffer[],
      ra: [] as Buffer[], rd: [] as number[], t: [] as number[], body: [] as Buffer[], exp: [] as number[], ttl: [] as number[], del: [] as number[],
    };
    for (const s of unique) {
      for (const r of s.recipients) {
        cols.sa.push(buf(s.sender.accountId)); cols.sd.push(s.sender.deviceId); cols.c.push(buf(s.clientMessageId));
        cols.ra.push(buf(r.accountId)); cols.rd.push(r.deviceId); cols.t.push(r.type); cols.body.push(buf(r.content));
        cols.exp.push(s.expiresAt); cols.ttl.push(s.readTtlS); cols.del.push(deleteAt(s));
      }
    }
    // One statement, so one round trip and one atomic commit: the send records that are new
    // (ON CONFLICT DO NOTHING keeps retries idempotent) and the envelopes of exactly those sends.
    // Every send has at least one recipient, so the returned envelopes name every new send.
    const rows: EnvelopeRow[] = await this.ds.query(
      `WITH input AS (
         SELECT * FROM unnest($1::bytea[], $2::bigint[], $3::bytea[], $4::bytea[], $5::bigint[], $6::smallint[], $7::bytea[], $8::bigint[], $9::bigint[], $10::bigint[])
           AS x(sa, sd, c, ra, rd, t, body, exp, ttl, del)
       ), sends AS (
         INSERT INTO message_sends (sender_account, sender_device, client_message_id, server_timestamp, delete_at)
         SELECT DISTINCT ON (sa, sd, c) sa, sd, c, $11, del FROM input
         ON CONFLICT DO NOTHING
         RETURNING sender_account, sender_device, client_message_id
       ), stored AS (
         INSERT INTO envelopes (recipient_account, recipient_device, sender_account, sender_device, client_message_id, type, content,
                                server_timestamp, expires_at, read_ttl_s, delete_at)
         SELECT i.ra, i.rd, i.sa, i.sd, i.c, i.t, i.body, $11, i.exp, i.ttl, i.del
         FROM input i JOIN sends s ON s.sender_account = i.sa AND s.sender_device = i.sd AND s.client_message_id = i.c
         RETURNING ${ENVELOPE_COLUMNS}
       )
       SELECT * FROM stored`,
      [cols.sa, cols.sd, cols.c, cols.ra, cols.rd, cols.t, cols.body, cols.exp, cols.ttl, cols.del, now],
    );
    const byKey = new Map<string, StoreResult>();
    for (const row of rows) {
      const key = sendKey({ accountId: row.senderAccount!, deviceId: row.senderDevice! }, row.clientMessageId);
      let r = byKey.get(key);
      if (!r) {
        r = { serverTimestamp: now, duplicate: false, envelopes: [] };
        byKey.set(key, r);
      }
      r.envelopes.push(toEnvelope(row));
    }
    const duplicates = unique.filter((s) => !byKey.has(sendKey(s.sender, s.clientMessageId)));
    if (duplicates.length > 0) {
      const prior: { senderAccount: Buffer; senderDevice: number; clientMessageId: Buffer; serverTimestamp: number }[] = await this.ds.query(
        `SELECT m.sender_account AS "senderAccount", m.sender_device AS "senderDevice", m.client_message_id AS "clientMessageId",
                m.server_timestamp AS "serverTimestamp"
         FROM message_sends m JOIN unnest($1::bytea[], $2::bigint[], $3::bytea[]) AS t(a, d, c)
           ON m.sender_account = t.a AND m.sender_device = t.d AND m.client_message_id = t.c`,
        [duplicates.map((s) => buf(s.sender.accountId)), duplicates.map((s) => s.sender.deviceId), duplicates.map((s) => buf(s.clientMessageId))],
      );
      for (const r of prior) {
        byKey.set(sendKey({ accountId: r.senderAccount, deviceId: r.senderDevice }, r.clientMessageId), { serverTimestamp: r.serverTimestamp, duplicate: true, envelopes: [] });
      }
    }

    return sends.map((s, i) => {
      const k = sendKey(s.sender, s.clientMessageId);
      const r = byKey.get(k)!;
      return firstIndex.get(k) === i ? r : { serverTimestamp: r.serverTimestamp, duplicate: true, envelopes: [] };
    });
  }

  /** A page of one device's queue in server order; never returns an envelope whose deadline has passed. */
  async fetchPage(recipient: DeviceAddress, afterSeq: number, limit: number, now: number): Promise<{ envelopes: StoredEnvelope[]; more: boolean }> {
    const rows: EnvelopeRow[] = await this.ds.query(
      `SELECT ${ENVELOPE_COLUMNS} FROM envelopes
       WHERE recipient_account = $1 AND recipient_device = $2 AND seq > $3 AND delete_at > $4
       ORDER BY seq LIMIT $5`,
      [buf(recipient.accountId), recipient.deviceId, afterSeq, now, limit + 1],
    );
    const more = rows.length > limit;
    return { envelopes: rows.slice(0, limit).map(toEnvelope), more };
  }

  /** Deletes acknowledged envelopes; each seq only if it belongs to the device that acked it. */
  async ack(items: { recipient: DeviceAddress; seqs: number[] }[]): Promise<number> {
    const a: Buffer[] = [];
    const d: number[] = [];
    const s: number[] = [];
    for (const item of items) {
      for (const seq of item.seqs) {
        a.push(buf(item.recipient.accountId));
        d.push(item.recipient.deviceId);
        s.push(seq);
      }
    }
    if (s.length === 0) return 0;
    return affectedRows(
      await this.ds.query(
        `DELETE FROM envelopes e USING unnest($1::bytea[], $2::bigint[], $3::bigint[]) AS x(a, d, s)
         WHERE e.seq = x.s AND e.recipient_account = x.a AND e.recipient_device = x.d`,
        [a, d, s],
      ),
    );
  }

  /** Deletes, in one bounded batch, envelopes and send records whose deadline has passed. */
  async deleteOverdue(now: number, limit: number): Promise<{ envelopes: number; sends: number }> {
    const envelopes = affectedRows(
      await this.ds.query(
        `DELETE FROM envelopes WHERE seq IN (SELECT seq FROM envelopes WHERE delete_at <= $1 ORDER BY delete_at LIMIT $2 FOR UPDATE SKIP LOCKED)`,
        [now, limit],
      ),
    );
    const sends = affectedRows(
      await this.ds.query(
        `DELETE FROM message_sends WHERE (sender_account, sender_device, client_message_id) IN
           (SELECT sender_account, sender_device, client_message_id FROM message_sends WHERE delete_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`,
        [now, limit],
      ),
    );
    return { envelopes, sends };
  }

  async queueDepth(recipient: DeviceAddress): Promise<number> {
    const rows: { n: number }[] = await this.ds.query(
      `SELECT count(*)::int AS n FROM envelopes WHERE recipient_account = $1 AND recipient_device = $2`,
      [buf(recipient.accountId), recipient.deviceId],
    );
    return rows[0]?.n ?? 0;
  }
}

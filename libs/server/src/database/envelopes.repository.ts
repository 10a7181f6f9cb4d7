import type { DataSource } from 'typeorm';
import type { EnvelopeSealer } from './envelope-sealer';
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
  /** Attachment ids the message references, deleted with it when it vanishes. */
  attachments?: string[];
  recipients: StoreRecipient[];
}

/** A message: the (sender device, clientMessageId) its copies share. */
export interface MessageKey {
  sender: DeviceAddress;
  clientMessageId: Uint8Array;
}

/** One deleted copy of an expired message. */
export interface ExpiredCopy {
  seq: number;
  recipient: DeviceAddress;
  message: MessageKey;
}

/** A vanishing message whose send record was deleted at its expiry. */
export interface ExpiredMessage {
  message: MessageKey;
  expiresAt: number;
  /** Recipient devices per recipient account (hex), other than the sender's own account. */
  recipientCounts: Record<string, number>;
  attachments: string[];
}

export interface ExpiryOutcome {
  copies: ExpiredCopy[];
  messages: ExpiredMessage[];
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
  deleteAt: number;
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
  deleteAt: number;
  keyWindow: number;
}

const ENVELOPE_COLUMNS = `seq, recipient_account AS "recipientAccount", recipient_device AS "recipientDevice",
  sender_account AS "senderAccount", sender_device AS "senderDevice", client_message_id AS "clientMessageId",
  type, content, server_timestamp AS "serverTimestamp", expires_at AS "expiresAt", read_ttl_s AS "readTtlS",
  delete_at AS "deleteAt", key_window AS "keyWindow"`;

interface JsonCopy {
  seq: number | string;
  ra: string;
  rd: number | string;
  sa: string;
  sd: number | string;
  c: string;
}

interface JsonSend {
  sa: string;
  sd: number | string;
  c: string;
  exp: number | string;
  rc: Record<string, number> | null;
  att: string[] | null;
}

interface SendRow {
  senderAccount: Buffer;
  senderDevice: number;
  clientMessageId: Buffer;
  expiresAt: number;
  recipientCounts: Record<string, number> | null;
  attachments: string[] | null;
}

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
    deleteAt: r.deleteAt,
  };
}

const buf = (x: Uint8Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);
const sendKey = (sender: DeviceAddress, cmid: Uint8Array) => `${buf(sender.accountId).toString('hex')}:${sender.deviceId}:${buf(cmid).toString('hex')}`;

const copyKey = (recipientHex: string, device: number, send: string) => `${send}|${recipientHex}:${device}`;

function toExpiredMessage(r: SendRow): ExpiredMessage {
  return {
    message: { sender: { accountId: r.senderAccount, deviceId: r.senderDevice }, clientMessageId: r.clientMessageId },
    expiresAt: r.expiresAt,
    recipientCounts: r.recipientCounts ?? {},
    attachments: r.attachments ?? [],
  };
}

/**
 * The message store. Reads and deletes are scoped by the recipient device; writes come in batches
 * (one transaction, one multi-row insert per table). Contents are sealed at rest with the key of
 * their expiry window (EnvelopeSealer): what this class returns is always the client's bytes.
 */
export class EnvelopesRepository {
  constructor(
    private readonly ds: DataSource,
    private readonly sealer: EnvelopeSealer,
  ) {}

  /** When a stored copy is deleted at the latest: its expiry, capped by the maximum retention. */
  static deadline(expiresAt: number, now: number, retentionMs: number): number {
    return expiresAt > 0 ? Math.min(expiresAt, now + retentionMs) : now + retentionMs;
  }

  /** Stores a batch of sends, idempotently on (sender device, clientMessageId). Results follow the input order. */
  async storeBatch(sends: StoreSend[], now: number, retentionMs: number): Promise<StoreResult[]> {
    const firstIndex = new Map<string, number>();
    sends.forEach((s, i) => {
      const k = sendKey(s.sender, s.clientMessageId);
      if (!firstIndex.has(k)) firstIndex.set(k, i);
    });
    const unique = [...firstIndex.values()].map((i) => sends[i]!);

    const cols = {
      sa: [] as Buffer[], sd: [] as number[], c: [] as Buffer[],
      ra: [] as Buffer[], rd: [] as number[], t: [] as number[], body: [] as Buffer[], exp: [] as number[], ttl: [] as number[], del: [] as number[], win: [] as number[],
    };
    const per = { sa: [] as Buffer[], sd: [] as number[], c: [] as Buffer[], del: [] as number[], exp: [] as number[], rc: [] as (string | null)[], att: [] as (string | null)[] };
    const plain = new Map<string, Uint8Array>();
    for (const s of unique) {
      const del = EnvelopesRepository.deadline(s.expiresAt, now, retentionMs);
      const counts: Record<string, number> = {};
      const senderHex = buf(s.sender.accountId).toString('hex');
      const sk = sendKey(s.sender, s.clientMessageId);
      for (const r of s.recipients) {
        const sealed = await this.sealer.seal(del, now, r, s.clientMessageId, r.content);
        const rhex = buf(r.accountId).toString('hex');
        cols.sa.push(buf(s.sender.accountId)); cols.sd.push(s.sender.deviceId); cols.c.push(buf(s.clientMessageId));
        cols.ra.push(buf(r.accountId)); cols.rd.push(r.deviceId); cols.t.push(r.type); cols.body.push(sealed.sealed);
        cols.exp.push(s.expiresAt); cols.ttl.push(s.readTtlS); cols.del.push(del); cols.win.push(sealed.window);
        plain.set(copyKey(rhex, r.deviceId, sk), r.content);
        if (rhex !== senderHex) counts[rhex] = (counts[rhex] ?? 0) + 1;
      }
      per.sa.push(buf(s.sender.accountId)); per.sd.push(s.sender.deviceId); per.c.push(buf(s.clientMessageId));
      per.del.push(del); per.exp.push(s.expiresAt);
      per.rc.push(s.expiresAt > 0 ? JSON.stringify(counts) : null);
      per.att.push(s.attachments && s.attachments.length > 0 ? JSON.stringify(s.attachments) : null);
    }
    // One statement, so one round trip and one atomic commit: the send records that are new
    // (ON CONFLICT DO NOTHING keeps retries idempotent) and the envelopes of exactly those sends.
    // Every send has at least one recipient, so the returned envelopes name every new send.
    const rows: Omit<EnvelopeRow, 'content'>[] = await this.ds.query(
      `WITH input AS (
         SELECT * FROM unnest($1::bytea[], $2::bigint[], $3::bytea[], $4::bytea[], $5::bigint[], $6::smallint[], $7::bytea[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[])
           AS x(sa, sd, c, ra, rd, t, body, exp, ttl, del, win)
       ), sends AS (
         INSERT INTO message_sends (sender_account, sender_device, client_message_id, server_timestamp, delete_at, expires_at, recipient_counts, attachments)
         SELECT sa, sd, c, $12, del, exp, rc, att
         FROM unnest($13::bytea[], $14::bigint[], $15::bytea[], $16::bigint[], $17::bigint[], $18::jsonb[], $19::jsonb[]) AS y(sa, sd, c, del, exp, rc, att)
         ON CONFLICT DO NOTHING
         RETURNING sender_account, sender_device, client_message_id
       ), stored AS (
         INSERT INTO envelopes (recipient_account, recipient_device, sender_account, sender_device, client_message_id, type, content,
                                server_timestamp, expires_at, read_ttl_s, delete_at, key_window)
         SELECT i.ra, i.rd, i.sa, i.sd, i.c, i.t, i.body, $12, i.exp, i.ttl, i.del, i.win
         FROM input i JOIN sends s ON s.sender_account = i.sa AND s.sender_device = i.sd AND s.client_message_id = i.c
         RETURNING seq, recipient_account AS "recipientAccount", recipient_device AS "recipientDevice",
           sender_account AS "senderAccount", sender_device AS "senderDevice", client_message_id AS "clientMessageId",
           type, server_timestamp AS "serverTimestamp", expires_at AS "expiresAt", read_ttl_s AS "readTtlS",
           delete_at AS "deleteAt", key_window AS "keyWindow"
       )
       SELECT * FROM stored`,
      [cols.sa, cols.sd, cols.c, cols.ra, cols.rd, cols.t, cols.body, cols.exp, cols.ttl, cols.del, cols.win, now,
        per.sa, per.sd, per.c, per.del, per.exp, per.rc, per.att],
    );
    const byKey = new Map<string, StoreResult>();
    for (const row of rows) {
      const sender = { accountId: row.senderAccount!, deviceId: row.senderDevice! };
      const key = sendKey(sender, row.clientMessageId);
      let r = byKey.get(key);
      if (!r) {
        r = { serverTimestamp: now, duplicate: false, envelopes: [] };
        byKey.set(key, r);
      }
      const content = plain.get(copyKey(row.recipientAccount.toString('hex'), row.recipientDevice, key))!;
      r.envelopes.push(toEnvelope({ ...row, content: buf(content) }));
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
      // A duplicate whose record is already gone (swept between the insert and the lookup) is still a duplicate.
      const r = byKey.get(k) ?? { serverTimestamp: now, duplicate: true, envelopes: [] };
      return firstIndex.get(k) === i ? r : { serverTimestamp: r.serverTimestamp, duplicate: true, envelopes: [] };
    });
  }

  /**
   * Stores server notices (expiry receipts) in their recipients' queues, sealed like any envelope.
   * They have no sender and are deleted on ack or at the maximum retention.
   */
  async storeNotices(notices: { recipient: DeviceAddress; clientMessageId: Uint8Array; type: number; content: Uint8Array }[], now: number, retentionMs: number): Promise<StoredEnvelope[]> {
    if (notices.length === 0) return [];
    const del = now + retentionMs;
    const sealed = [];
    for (const n of notices) sealed.push(await this.sealer.seal(del, now, n.recipient, n.clientMessageId, n.content));
    const rows: Omit<EnvelopeRow, 'content'>[] = await this.ds.query(
      `INSERT INTO envelopes (recipient_account, recipient_device, client_message_id, type, content, server_timestamp, delete_at, key_window)
       SELECT * FROM unnest($1::bytea[], $2::bigint[], $3::bytea[], $4::smallint[], $5::bytea[], $6::bigint[], $7::bigint[], $8::bigint[])
       RETURNING seq, recipient_account AS "recipientAccount", recipient_device AS "recipientDevice",
         sender_account AS "senderAccount", sender_device AS "senderDevice", client_message_id AS "clientMessageId",
         type, server_timestamp AS "serverTimestamp", expires_at AS "expiresAt", read_ttl_s AS "readTtlS",
         delete_at AS "deleteAt", key_window AS "keyWindow"`,
      [
        notices.map((n) => buf(n.recipient.accountId)), notices.map((n) => n.recipient.deviceId), notices.map((n) => buf(n.clientMessageId)),
        notices.map((n) => n.type), sealed.map((x) => x.sealed), notices.map(() => now), notices.map(() => del), sealed.map((x) => x.window),
      ],
    );
    // unnest … RETURNING keeps the input order.
    return rows.map((row, i) => toEnvelope({ ...row, content: buf(notices[i]!.content) }));
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
    const envelopes: StoredEnvelope[] = [];
    for (const r of rows.slice(0, limit)) {
      const content = await this.sealer.open(r.keyWindow, now, recipient, r.clientMessageId, r.content);
      // Undecryptable means shredded (its window has ended): as good as deleted.
      if (content) envelopes.push(toEnvelope({ ...r, content }));
    }
    return { envelopes, more };
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

  /**
   * A read report (PROTOCOL.md §8): lowers the deadline of this device's read-mode copies to
   * min(deadline, now + read_ttl) and reseals them under the earlier window. Returns the new deadlines.
   */
  async lowerOnRead(recipient: DeviceAddress, seqs: number[], now: number): Promise<{ message: MessageKey; deleteAt: number }[]> {
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

  /**
   * Expires the given vanishing messages: deletes every copy whose deadline has passed and, when the
   * message's own expiry has passed, its send record (returned once, for receipts and attachments).
   */
  async expireMessages(messages: MessageKey[], now: number): Promise<ExpiryOutcome> {
    if (messages.length === 0) return { copies: [], messages: [] };
    // One statement: a concurrent expiry of the same message waits on these row locks and then finds
    // nothing, so copies and send record are reported together, once.
    const [row]: { copies: JsonCopy[] | null; sends: JsonSend[] | null }[] = await this.ds.query(
      `WITH t AS (SELECT * FROM unnest($1::bytea[], $2::bigint[], $3::bytea[]) AS t(a, d, c)),
       sends AS (
         DELETE FROM message_sends m USING t
         WHERE m.expires_at > 0 AND m.sender_account = t.a AND m.sender_device = t.d AND m.client_message_id = t.c AND m.delete_at <= $4
         RETURNING m.*
       ), gone AS (
         DELETE FROM envelopes e USING t
         WHERE e.expires_at > 0 AND e.sender_account = t.a AND e.sender_device = t.d AND e.client_message_id = t.c AND e.delete_at <= $4
         RETURNING e.*
       )
       SELECT (SELECT json_agg(json_build_object('seq', g.seq, 'ra', encode(g.recipient_account, 'hex'), 'rd', g.recipient_device,
                 'sa', encode(g.sender_account, 'hex'), 'sd', g.sender_device, 'c', encode(g.client_message_id, 'hex'))) FROM gone g) AS copies,
              (SELECT json_agg(json_build_object('sa', encode(s.sender_account, 'hex'), 'sd', s.sender_device, 'c', encode(s.client_message_id, 'hex'),
                 'exp', s.expires_at, 'rc', s.recipient_counts, 'att', s.attachments)) FROM sends s) AS sends`,
      [messages.map((m) => buf(m.sender.accountId)), messages.map((m) => m.sender.deviceId), messages.map((m) => buf(m.clientMessageId)), now],
    );
    return {
      copies: (row?.copies ?? []).map((c) => ({
        seq: Number(c.seq),
        recipient: { accountId: Buffer.from(c.ra, 'hex'), deviceId: Number(c.rd) },
        message: { sender: { accountId: Buffer.from(c.sa, 'hex'), deviceId: Number(c.sd) }, clientMessageId: Buffer.from(c.c, 'hex') },
      })),
      messages: (row?.sends ?? []).map((m) => ({
        message: { sender: { accountId: Buffer.from(m.sa, 'hex'), deviceId: Number(m.sd) }, clientMessageId: Buffer.from(m.c, 'hex') },
        expiresAt: Number(m.exp),
        recipientCounts: m.rc ?? {},
        attachments: m.att ?? [],
      })),
    };
  }

  /**
   * The sweep's half of expiry, needing no Redis state: up to `limit` vanishing messages whose
   * expiry has passed, claimed with SKIP LOCKED so concurrent sweeps never take the same ones.
   */
  async expireDueMessages(now: number, limit: number): Promise<ExpiryOutcome> {
    const rows: (SendRow & { copies: { seq: number | string; recipientAccount: string; recipientDevice: number | string }[] | null })[] = await this.ds.query(
      `WITH due AS (
         DELETE FROM message_sends WHERE (sender_account, sender_device, client_message_id) IN (
           SELECT sender_account, sender_device, client_message_id FROM message_sends
           WHERE delete_at <= $1 AND expires_at > 0 ORDER BY delete_at LIMIT $2 FOR UPDATE SKIP LOCKED)
         RETURNING *
       ), gone AS (
         DELETE FROM envelopes e USING due
         WHERE e.expires_at > 0 AND e.sender_account = due.sender_account AND e.sender_device = due.sender_device
           AND e.client_message_id = due.client_message_id AND e.delete_at <= $1
         RETURNING e.*
       )
       SELECT due.sender_account AS "senderAccount", due.sender_device AS "senderDevice", due.client_message_id AS "clientMessageId",
              due.expires_at AS "expiresAt", due.recipient_counts AS "recipientCounts", due.attachments,
              (SELECT json_agg(json_build_object('seq', g.seq, 'recipientAccount', encode(g.recipient_account, 'hex'), 'recipientDevice', g.recipient_device))
               FROM gone g WHERE g.sender_account = due.sender_account AND g.sender_device = due.sender_device AND g.client_message_id = due.client_message_id) AS copies
       FROM due`,
      [now, limit],
    );
    const copies: ExpiredCopy[] = [];
    for (const r of rows) {
      for (const c of r.copies ?? []) {
        copies.push({
          seq: Number(c.seq),
          recipient: { accountId: Buffer.from(c.recipientAccount, 'hex'), deviceId: Number(c.recipientDevice) },
          message: { sender: { accountId: r.senderAccount, deviceId: Number(r.senderDevice) }, clientMessageId: r.clientMessageId },
        });
      }
    }
    return { copies, messages: rows.map(toExpiredMessage) };
  }

  /** Deletes, in one bounded batch, envelopes and non-vanishing send records whose deadline has passed. */
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
           (SELECT sender_account, sender_device, client_message_id FROM message_sends WHERE delete_at <= $1 AND expires_at = 0 LIMIT $2 FOR UPDATE SKIP LOCKED)`,
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

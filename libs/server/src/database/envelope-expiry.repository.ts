import type { DataSource } from 'typeorm';
import { buf, type MessageKey } from './envelope-row.mapper';
import { affectedRows, returnedRows, type DeviceAddress } from './types';

/** One deleted copy of an expired message. */
export interface ExpiredCopy {
  /** envelope id: a decimal string (bigint), never a JS number */
  seq: string;
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

interface JsonCopy {
  seq: string;
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

function toExpiredMessage(r: SendRow): ExpiredMessage {
  return {
    message: { sender: { accountId: r.senderAccount, deviceId: r.senderDevice }, clientMessageId: r.clientMessageId },
    expiresAt: r.expiresAt,
    recipientCounts: r.recipientCounts ?? {},
    attachments: r.attachments ?? [],
  };
}

/**
 * Expiry of stored messages: vanishing messages by their message key (from the expiry job or the
 * sweep) and overdue envelopes and send records. These are the cross-device statements: they are
 * keyed by sender or deadline, not by recipient device, so they visit every envelope partition.
 */
export class EnvelopeExpiryRepository {
  constructor(private readonly ds: DataSource) {}

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
       SELECT (SELECT json_agg(json_build_object('seq', g.seq::text, 'ra', encode(g.recipient_account, 'hex'), 'rd', g.recipient_device,
                 'sa', encode(g.sender_account, 'hex'), 'sd', g.sender_device, 'c', encode(g.client_message_id, 'hex'))) FROM gone g) AS copies,
              (SELECT json_agg(json_build_object('sa', encode(s.sender_account, 'hex'), 'sd', s.sender_device, 'c', encode(s.client_message_id, 'hex'),
                 'exp', s.expires_at, 'rc', s.recipient_counts, 'att', s.attachments)) FROM sends s) AS sends`,
      [messages.map((m) => buf(m.sender.accountId)), messages.map((m) => m.sender.deviceId), messages.map((m) => buf(m.clientMessageId)), now],
    );
    return {
      copies: (row?.copies ?? []).map((c) => ({
        seq: c.seq,
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
    const rows: (SendRow & { copies: { seq: string; recipientAccount: string; recipientDevice: number | string }[] | null })[] = await this.ds.query(
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
              (SELECT json_agg(json_build_object('seq', g.seq::text, 'recipientAccount', encode(g.recipient_account, 'hex'), 'recipientDevice', g.recipient_device))
               FROM gone g WHERE g.sender_account = due.sender_account AND g.sender_device = due.sender_device AND g.client_message_id = due.client_message_id) AS copies
       FROM due`,
      [now, limit],
    );
    const copies: ExpiredCopy[] = [];
    for (const r of rows) {
      for (const c of r.copies ?? []) {
        copies.push({
          seq: c.seq,
          recipient: { accountId: Buffer.from(c.recipientAccount, 'hex'), deviceId: Number(c.recipientDevice) },
          message: { sender: { accountId: r.senderAccount, deviceId: Number(r.senderDevice) }, clientMessageId: r.clientMessageId },
        });
      }
    }
    return { copies, messages: rows.map(toExpiredMessage) };
  }

  /**
   * Recall: deletes the queued copies of one send held for any device of `recipientAccounts`. Keyed
   * by the sender device, so only that device's own sends can be named. Naming the recipient accounts
   * prunes to their partitions and walks the primary key's (recipient_account, …) prefix, so no index
   * on the sender key of every envelope is needed (envelopes_message covers vanishing ones only).
   * The send record stays (a retry remains a duplicate); a vanishing message's expiry then finds no
   * copy and sends no receipt.
   */
  async recall(message: MessageKey, recipientAccounts: Uint8Array[]): Promise<ExpiredCopy[]> {
    if (recipientAccounts.length === 0) return [];
    const rows = returnedRows<{ seq: string; ra: Buffer; rd: number | string }>(
      await this.ds.query(
        `DELETE FROM envelopes
         WHERE recipient_account = ANY($4::bytea[]) AND sender_account = $1 AND sender_device = $2 AND client_message_id = $3
         RETURNING seq::text AS seq, recipient_account AS ra, recipient_device AS rd`,
        [buf(message.sender.accountId), message.sender.deviceId, buf(message.clientMessageId), recipientAccounts.map(buf)],
      ),
    );
    return rows.map((r) => ({ seq: r.seq, recipient: { accountId: r.ra, deviceId: Number(r.rd) }, message }));
  }

  /** Deletes, in one bounded batch, envelopes and non-vanishing send records whose deadline has passed. */
  async deleteOverdue(now: number, limit: number): Promise<{ envelopes: number; sends: number }> {
    const envelopes = affectedRows(
      await this.ds.query(
        // By the full primary key: `seq` alone has no index on the partitioned table.
        `DELETE FROM envelopes e USING (
           SELECT recipient_account, recipient_device, seq FROM envelopes WHERE delete_at <= $1 ORDER BY delete_at LIMIT $2 FOR UPDATE SKIP LOCKED
         ) o
         WHERE e.recipient_account = o.recipient_account AND e.recipient_device = o.recipient_device AND e.seq = o.seq`,
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
}

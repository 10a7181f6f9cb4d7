import type { DataSource, EntityManager } from 'typeorm';
import { byteaArray } from './binary-array';
import type { EnvelopeSealer } from './envelope-sealer';
import { HotStatements } from './hot-statements';
import { buf, ENVELOPE_COLUMNS, ENVELOPE_META_COLUMNS, openRows, toEnvelope, type EnvelopeRow, type MessageKey, type StoredEnvelope } from './envelope-row.mapper';
import { copyKey, fitWithinCaps, prepareSends, QUEUE_CAP_SQLSTATE, QUEUE_RECOUNT_INTERVAL_MS, sendKey, type PreparedSend, type QueueCaps, type StoreResult, type StoreSend } from './send-batch';
import type { DeviceAddress } from './types';

/** The data source, or the entity manager of a transaction. */
type Queryable = Pick<EntityManager, 'query'>;

/** The insert trigger's refusal, as pg raises it or as TypeORM wraps it. */
function isQueueCapError(err: unknown): boolean {
  const e = err as { code?: string; driverError?: { code?: string } } | null;
  return e?.code === QUEUE_CAP_SQLSTATE || e?.driverError?.code === QUEUE_CAP_SQLSTATE;
}

/**
 * One send record by its key, for a `CROSS JOIN LATERAL` over an `unnest(…) AS t(a, d, c)` list:
 * a primary-key probe per key. A planner-chosen join may hash the list against the whole table.
 */
const SEND_RECORD_PROBE = `SELECT sender_account, sender_device, client_message_id, server_timestamp FROM message_sends
  WHERE sender_account = t.a AND sender_device = t.d AND client_message_id = t.c LIMIT 1`;

/**
 * Writes into the recipients' queues: the relay's batches of sends and the expiry worker's notices.
 * Writes come in batches (one transaction, one multi-row insert per table). Contents are sealed at
 * rest with the key of their expiry window (EnvelopeSealer).
 */
export class EnvelopeStoreRepository {
  constructor(
    private readonly ds: DataSource,
    private readonly sealer: EnvelopeSealer,
    private readonly hot = new HotStatements(ds, true),
  ) {}

  /**
   * Stores a batch of sends, idempotently on (sender device, clientMessageId). Results follow the input order.
   * With `caps`, a send that would take any recipient device's queue past a cap is refused whole
   * (`refused: 'QUEUE_FULL'`, nothing of it stored). The insert trigger adds to the recipients' queue
   * counters under their row locks and refuses the statement when one would pass a cap, so concurrent
   * batches cannot both take the last place.
   */
  async storeBatch(sends: StoreSend[], now: number, retentionMs: number, caps?: QueueCaps): Promise<StoreResult[]> {
    const { firstIndex, unique, prepared, plain } = await prepareSends(sends, this.sealer, now, retentionMs);

    const refused = new Set<string>();
    // One statement stores the batch when all of it fits (the usual case); when the trigger finds a
    // counter past a cap, nothing was stored and a transaction admits send by send.
    let rows: Omit<EnvelopeRow, 'content'>[];
    try {
      rows = await this.insertSends(this.ds, prepared, now, caps);
    } catch (err) {
      if (!caps || !isQueueCapError(err)) throw err;
      rows = await this.ds.transaction(async (tx) => {
        const admitted = await this.admit(tx, prepared, caps, now);
        for (const p of prepared) if (!admitted.includes(p)) refused.add(p.key);
        return this.insertSends(tx, admitted, now);
      });
    }
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
    for (const k of refused) byKey.set(k, { serverTimestamp: now, duplicate: false, envelopes: [], refused: 'QUEUE_FULL' });
    const duplicates = unique.filter((s) => !byKey.has(sendKey(s.sender, s.clientMessageId)));
    if (duplicates.length > 0) {
      const prior: { senderAccount: Buffer; senderDevice: number; clientMessageId: Buffer; serverTimestamp: number }[] = await this.ds.query(
        `SELECT m.sender_account AS "senderAccount", m.sender_device AS "senderDevice", m.client_message_id AS "clientMessageId",
                m.server_timestamp AS "serverTimestamp"
         FROM unnest($1::bytea[], $2::bigint[], $3::bytea[]) AS t(a, d, c)
         CROSS JOIN LATERAL (${SEND_RECORD_PROBE}) m`,
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
      return firstIndex.get(k) === i || r.refused ? r : { serverTimestamp: r.serverTimestamp, duplicate: true, envelopes: [] };
    });
  }

  /**
   * Locks the queue counters of every recipient device of the batch (creating missing ones) and returns
   * the sends that fit, in batch order. A counter is an upper bound (deletes do not lower it): one
   * that leaves no room for the batch is first recounted from its queue, at most once per
   * QUEUE_RECOUNT_INTERVAL_MS (the recount runs under the lock, so it sees every committed insert).
   * A send already stored (a retry) never takes space: when some send does not fit, stored ones are
   * looked up and left out (the insert then reports them duplicates).
   */
  private async admit(q: Queryable, prepared: PreparedSend[], caps: QueueCaps, now: number): Promise<PreparedSend[]> {
    const queues = new Map<string, { a: Buffer; d: number; envelopes: number; bytes: number; needN: number; needB: number; countedAt: number }>();
    for (const p of prepared) {
      for (const c of p.copies) {
        const x = queues.get(c.queue) ?? { a: buf(c.recipient.accountId), d: c.recipient.deviceId, envelopes: 0, bytes: 0, needN: 0, needB: 0, countedAt: 0 };
        x.needN += 1;
        x.needB += c.body.length;
        queues.set(c.queue, x);
      }
    }
    const list = [...queues.values()];
    type Counter = { a: Buffer; d: number; envelopes: number; bytes: number; countedAt: number };
    const take = (rows: Counter[]) => {
      for (const r of rows) {
        const x = queues.get(`${r.a.toString('hex')}:${r.d}`)!;
        x.envelopes = Number(r.envelopes);
        x.bytes = Number(r.bytes);
        x.countedAt = Number(r.countedAt);
      }
    };
    take(
      await q.query(
        `INSERT INTO device_queues AS q (recipient_account, recipient_device)
         SELECT a, d FROM unnest($1::bytea[], $2::bigint[]) AS x(a, d) ORDER BY a, d
         ON CONFLICT (recipient_account, recipient_device) DO UPDATE SET envelopes = q.envelopes
         RETURNING recipient_account AS a, recipient_device AS d, envelopes, bytes, counted_at AS "countedAt"`,
        [list.map((x) => x.a), list.map((x) => x.d)],
      ),
    );
    const stale = list.filter((x) => (x.envelopes + x.needN > caps.envelopes || x.bytes + x.needB > caps.bytes) && x.countedAt <= now - QUEUE_RECOUNT_INTERVAL_MS);
    if (stale.length > 0) {
      take(
        await q.query(
          // As a CTE, so that the answer is the rows (TypeORM answers [rows, count] for a bare UPDATE).
          `WITH recounted AS (
           UPDATE device_queues q SET envelopes = c.n, bytes = c.b, counted_at = $3
           FROM (
             SELECT x.a, x.d, q.n, q.b
             FROM (SELECT DISTINCT a, d FROM unnest($1::bytea[], $2::bigint[]) AS u(a, d)) x
             CROSS JOIN LATERAL (
               SELECT count(*) AS n, coalesce(sum(octet_length(e.content)), 0) AS b FROM envelopes e
               WHERE e.recipient_account = x.a AND e.recipient_device = x.d
             ) q
           ) c
           WHERE q.recipient_account = c.a AND q.recipient_device = c.d
           RETURNING q.recipient_account AS a, q.recipient_device AS d, q.envelopes, q.bytes, q.counted_at AS "countedAt"
           ) SELECT * FROM recounted`,
          [stale.map((x) => x.a), stale.map((x) => x.d), now],
        ),
      );
    }
    const fit = (candidates: PreparedSend[]) => fitWithinCaps(candidates, queues, caps);
    const admitted = fit(prepared);
    if (admitted.length === prepared.length) return admitted;
    const stored: { a: Buffer; d: number; c: Buffer }[] = await q.query(
      `SELECT m.sender_account AS a, m.sender_device AS d, m.client_message_id AS c
       FROM unnest($1::bytea[], $2::bigint[], $3::bytea[]) AS t(a, d, c)
       CROSS JOIN LATERAL (${SEND_RECORD_PROBE}) m`,
      [prepared.map((p) => buf(p.send.sender.accountId)), prepared.map((p) => p.send.sender.deviceId), prepared.map((p) => buf(p.send.clientMessageId))],
    );
    const already = new Set(stored.map((r) => sendKey({ accountId: r.a, deviceId: Number(r.d) }, r.c)));
    const fresh = fit(prepared.filter((p) => !already.has(p.key)));
    return [...prepared.filter((p) => already.has(p.key)), ...fresh];
  }

  /**
   * One statement, so one round trip and one atomic commit: the send records that are new (ON
   * CONFLICT DO NOTHING keeps retries idempotent) and the envelopes of exactly those sends. Every
   * send has at least one recipient, so the returned envelopes name every new send. With `caps`, the
   * statement names them to the insert trigger, which fails it whole (QUEUE_CAP_SQLSTATE) when a
   * recipient's counter would pass one.
   */
  private async insertSends(q: Queryable, prepared: PreparedSend[], now: number, caps?: QueueCaps): Promise<Omit<EnvelopeRow, 'content'>[]> {
    if (prepared.length === 0) return [];
    const cols = {
      sa: [] as Buffer[], sd: [] as number[], c: [] as Buffer[],
      ra: [] as Buffer[], rd: [] as number[], t: [] as number[], body: [] as Buffer[], exp: [] as number[], ttl: [] as number[], del: [] as number[], win: [] as number[],
    };
    const per = { sa: [] as Buffer[], sd: [] as number[], c: [] as Buffer[], del: [] as number[], exp: [] as number[], rc: [] as (string | null)[], att: [] as (string | null)[] };
    for (const { send: s, del, copies, counts } of prepared) {
      for (const { recipient: r, body, window } of copies) {
        cols.sa.push(buf(s.sender.accountId)); cols.sd.push(s.sender.deviceId); cols.c.push(buf(s.clientMessageId));
        cols.ra.push(buf(r.accountId)); cols.rd.push(r.deviceId); cols.t.push(r.type); cols.body.push(body);
        cols.exp.push(s.expiresAt); cols.ttl.push(s.readTtlS); cols.del.push(del); cols.win.push(window);
      }
      per.sa.push(buf(s.sender.accountId)); per.sd.push(s.sender.deviceId); per.c.push(buf(s.clientMessageId));
      per.del.push(del); per.exp.push(s.expiresAt);
      per.rc.push(s.expiresAt > 0 ? JSON.stringify(counts) : null);
      per.att.push(s.attachments && s.attachments.length > 0 ? JSON.stringify(s.attachments) : null);
    }
    const params: unknown[] = [byteaArray(cols.sa), cols.sd, byteaArray(cols.c), byteaArray(cols.ra), cols.rd, cols.t, byteaArray(cols.body), cols.exp, cols.ttl, cols.del, cols.win, now,
      byteaArray(per.sa), per.sd, byteaArray(per.c), per.del, per.exp, per.rc, per.att];
    let capped = '';
    let gate = '';
    if (caps) {
      // Local to the statement's own transaction; evaluated before any insert because `sends` reads it.
      params.push(`${caps.envelopes},${caps.bytes}`);
      capped = `, caps AS (SELECT set_config('umbra.queue_caps', $20::text, true) AS v)`;
      gate = 'WHERE (SELECT v FROM caps) IS NOT NULL';
    }
    type Row = Omit<EnvelopeRow, 'content'>;
    // Outside a transaction (the usual case) it runs as a named statement; the fallback's runs in its transaction.
    const run = (text: string, values: unknown[]): Promise<Row[]> =>
      q === this.ds ? this.hot.query<Row>(caps ? 'umbra_store_capped_v2' : 'umbra_store_v1', text, values).then((r) => r.rows) : q.query(text, values);
    return run(
      `WITH input AS (
         SELECT * FROM unnest($1::bytea[], $2::bigint[], $3::bytea[], $4::bytea[], $5::bigint[], $6::smallint[], $7::bytea[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[])
           AS x(sa, sd, c, ra, rd, t, body, exp, ttl, del, win)
       )${capped}, sends AS (
         INSERT INTO message_sends (sender_account, sender_device, client_message_id, server_timestamp, delete_at, expires_at, recipient_counts, attachments)
         SELECT sa, sd, c, $12, del, exp, rc, att
         FROM unnest($13::bytea[], $14::bigint[], $15::bytea[], $16::bigint[], $17::bigint[], $18::jsonb[], $19::jsonb[]) AS y(sa, sd, c, del, exp, rc, att)
         ${gate}
         ON CONFLICT DO NOTHING
         RETURNING sender_account, sender_device, client_message_id
       ), stored AS (
         INSERT INTO envelopes (recipient_account, recipient_device, sender_account, sender_device, client_message_id, type, content,
                                server_timestamp, expires_at, read_ttl_s, delete_at, key_window)
         SELECT i.ra, i.rd, i.sa, i.sd, i.c, i.t, i.body, $12, i.exp, i.ttl, i.del, i.win
         FROM input i JOIN sends s ON s.sender_account = i.sa AND s.sender_device = i.sd AND s.client_message_id = i.c
         RETURNING ${ENVELOPE_META_COLUMNS}
       )
       SELECT * FROM stored`,
      params,
    );
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
       RETURNING ${ENVELOPE_META_COLUMNS}`,
      [
        notices.map((n) => buf(n.recipient.accountId)), notices.map((n) => n.recipient.deviceId), notices.map((n) => buf(n.clientMessageId)),
        notices.map((n) => n.type), sealed.map((x) => x.sealed), notices.map(() => now), notices.map(() => del), sealed.map((x) => x.window),
      ],
    );
    // unnest … RETURNING keeps the input order.
    return rows.map((row, i) => toEnvelope({ ...row, content: buf(notices[i]!.content) }));
  }

  /**
   * The copies of already-stored messages still queued for the given recipient devices (a retried
   * relay job re-publishes them). Scoped by recipient device; in server order.
   */
  async queuedCopies(copies: { recipient: DeviceAddress; message: MessageKey }[], now: number): Promise<StoredEnvelope[]> {
    if (copies.length === 0) return [];
    const rows: EnvelopeRow[] = await this.ds.query(
      // A LATERAL probe per copy, in its device's queue: a planner-chosen join may hash whole partitions.
      `SELECT e.* FROM unnest($1::bytea[], $2::bigint[], $3::bytea[], $4::bigint[], $5::bytea[]) AS x(ra, rd, sa, sd, c)
       CROSS JOIN LATERAL (
         SELECT ${ENVELOPE_COLUMNS} FROM envelopes
         WHERE recipient_account = x.ra AND recipient_device = x.rd
           AND sender_account = x.sa AND sender_device = x.sd AND client_message_id = x.c AND delete_at > $6
         ORDER BY envelopes.seq LIMIT 1
       ) e
       ORDER BY e.seq::bigint`,
      [
        copies.map((c) => buf(c.recipient.accountId)), copies.map((c) => c.recipient.deviceId),
        copies.map((c) => buf(c.message.sender.accountId)), copies.map((c) => c.message.sender.deviceId), copies.map((c) => buf(c.message.clientMessageId)),
        now,
      ],
    );
    return openRows(this.sealer, rows, now, (r) => ({ accountId: r.recipientAccount, deviceId: r.recipientDevice }));
  }
}

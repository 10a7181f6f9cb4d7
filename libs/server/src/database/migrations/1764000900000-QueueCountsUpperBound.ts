import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The queue cap's counters become upper bounds, enforced where they grow. Before, every envelope
 * cost three updates of its device's `device_queues` row: the capped store locked it, the insert
 * trigger added to it, the delete trigger (on ack, expiry, sweeps) subtracted from it.
 *
 * Now only inserts count (`device_queues_count_in`, as before), nothing that deletes does, and
 * `counted_at` records the last exact recount. A capped store names its caps for the statement
 * (`set_config('umbra.queue_caps', '<envelopes>,<bytes>', true)`); the insert trigger then refuses
 * the whole statement (SQLSTATE UQ001) when a counter would pass a cap. The store then admits send
 * by send under the counters' locks, recounting a full-looking queue from `envelopes` first
 * (EnvelopeStoreRepository). A counter is never below its queue's real size, so no queue passes its cap.
 */
export class QueueCountsUpperBound1764000900000 implements MigrationInterface {
  name = 'QueueCountsUpperBound1764000900000';

  async up(q: QueryRunner): Promise<void> {
    await q.query('DROP TRIGGER envelopes_count_out ON envelopes');
    await q.query('DROP FUNCTION device_queues_count_out()');
    await q.query('ALTER TABLE device_queues ADD COLUMN counted_at bigint NOT NULL DEFAULT 0');
    await q.query(`
      CREATE OR REPLACE FUNCTION device_queues_count_in() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE
        caps text := coalesce(current_setting('umbra.queue_caps', true), '');
        over boolean;
      BEGIN
        WITH counted AS (
          INSERT INTO device_queues AS q (recipient_account, recipient_device, envelopes, bytes)
          SELECT recipient_account, recipient_device, count(*), sum(octet_length(content))
          FROM new_rows GROUP BY recipient_account, recipient_device ORDER BY recipient_account, recipient_device
          ON CONFLICT (recipient_account, recipient_device)
          DO UPDATE SET envelopes = q.envelopes + EXCLUDED.envelopes, bytes = q.bytes + EXCLUDED.bytes
          RETURNING q.envelopes, q.bytes
        )
        SELECT coalesce(bool_or(caps <> '' AND (envelopes > split_part(caps, ',', 1)::bigint OR bytes > split_part(caps, ',', 2)::bigint)), false)
        INTO over FROM counted;
        IF over THEN
          RAISE EXCEPTION 'a recipient device queue would pass its cap' USING ERRCODE = 'UQ001';
        END IF;
        RETURN NULL;
      END $$`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE OR REPLACE FUNCTION device_queues_count_in() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO device_queues AS q (recipient_account, recipient_device, envelopes, bytes)
        SELECT recipient_account, recipient_device, count(*), sum(octet_length(content))
        FROM new_rows GROUP BY recipient_account, recipient_device ORDER BY recipient_account, recipient_device
        ON CONFLICT (recipient_account, recipient_device)
        DO UPDATE SET envelopes = q.envelopes + EXCLUDED.envelopes, bytes = q.bytes + EXCLUDED.bytes;
        RETURN NULL;
      END $$`);
    await q.query(`
      CREATE FUNCTION device_queues_count_out() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM 1 FROM device_queues q
          JOIN (SELECT DISTINCT recipient_account, recipient_device FROM old_rows) o
            ON q.recipient_account = o.recipient_account AND q.recipient_device = o.recipient_device
          ORDER BY q.recipient_account, q.recipient_device FOR UPDATE OF q;
        UPDATE device_queues q SET envelopes = greatest(0, q.envelopes - o.n), bytes = greatest(0, q.bytes - o.b)
        FROM (SELECT recipient_account, recipient_device, count(*) AS n, sum(octet_length(content)) AS b
              FROM old_rows GROUP BY recipient_account, recipient_device) o
        WHERE q.recipient_account = o.recipient_account AND q.recipient_device = o.recipient_device;
        RETURN NULL;
      END $$`);
    // The exact counts come back: nothing writes envelopes between the recount and the trigger.
    await q.query('LOCK TABLE envelopes IN SHARE ROW EXCLUSIVE MODE');
    await q.query(`
      UPDATE device_queues q SET (envelopes, bytes) = (
        SELECT count(*), coalesce(sum(octet_length(e.content)), 0) FROM envelopes e
        WHERE e.recipient_account = q.recipient_account AND e.recipient_device = q.recipient_device)`);
    await q.query('ALTER TABLE device_queues DROP COLUMN counted_at');
    await q.query(`
      CREATE TRIGGER envelopes_count_out AFTER DELETE ON envelopes
      REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION device_queues_count_out()`);
  }
}

import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Per-recipient-device queue size (envelopes and stored bytes), for the queue cap. Triggers keep it
 * exact on every insert and delete of `envelopes`, whichever code path does it (sends, notices, acks,
 * expiry, sweeps, device removal). Each trigger touches its rows in key order, so concurrent
 * statements never deadlock on them; the relay locks a send's rows first (EnvelopeStoreRepository.storeBatch).
 */
export class DeviceQueues1764000410000 implements MigrationInterface {
  name = 'DeviceQueues1764000410000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE device_queues (
        recipient_account  bytea NOT NULL,
        recipient_device   bigint NOT NULL,
        envelopes          bigint NOT NULL DEFAULT 0,
        bytes              bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (recipient_account, recipient_device)
      )`);
    await q.query(`
      CREATE FUNCTION device_queues_count_in() RETURNS trigger LANGUAGE plpgsql AS $$
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
    // Counts start exact: no envelope is written or deleted between the count and the triggers.
    await q.query('LOCK TABLE envelopes IN SHARE ROW EXCLUSIVE MODE');
    await q.query(`
      INSERT INTO device_queues (recipient_account, recipient_device, envelopes, bytes)
      SELECT recipient_account, recipient_device, count(*), sum(octet_length(content)) FROM envelopes
      GROUP BY recipient_account, recipient_device`);
    await q.query(`
      CREATE TRIGGER envelopes_count_in AFTER INSERT ON envelopes
      REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION device_queues_count_in()`);
    await q.query(`
      CREATE TRIGGER envelopes_count_out AFTER DELETE ON envelopes
      REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION device_queues_count_out()`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TRIGGER envelopes_count_out ON envelopes');
    await q.query('DROP TRIGGER envelopes_count_in ON envelopes');
    await q.query('DROP FUNCTION device_queues_count_out()');
    await q.query('DROP FUNCTION device_queues_count_in()');
    await q.query('DROP TABLE device_queues');
  }
}

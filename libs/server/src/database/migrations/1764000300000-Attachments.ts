import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Attachments (PROTOCOL.md §9): one row per uploaded blob; the bytes live in the object store. */
export class Attachments1764000300000 implements MigrationInterface {
  name = 'Attachments1764000300000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE attachments (
        id              bytea PRIMARY KEY CHECK (length(id) = 16),
        account_id      bytea NOT NULL,
        size            bigint NOT NULL CHECK (size > 0),
        state           smallint NOT NULL CHECK (state IN (1, 2)),
        upload_id       text,
        part_size       bigint NOT NULL,
        part_count      integer NOT NULL CHECK (part_count BETWEEN 1 AND 10000),
        created_at      bigint NOT NULL,
        upload_deadline bigint NOT NULL,
        expires_at      bigint NOT NULL,
        completed_at    bigint
      )`);
    await q.query('CREATE INDEX attachments_account_created ON attachments (account_id, created_at)');
    await q.query('CREATE INDEX attachments_pending_deadline ON attachments (upload_deadline) WHERE state = 1');
    await q.query('CREATE INDEX attachments_expires ON attachments (expires_at)');
    // Bytes declared per account and UTC day (the daily quota); deleting an attachment does not give them back.
    await q.query(`
      CREATE TABLE attachment_usage (
        account_id  bytea NOT NULL,
        day         integer NOT NULL,
        bytes       bigint NOT NULL,
        PRIMARY KEY (account_id, day)
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE attachment_usage');
    await q.query('DROP TABLE attachments');
  }
}

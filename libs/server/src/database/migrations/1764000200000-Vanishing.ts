import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Vanishing messages: per-window keys that wrap stored envelopes (crypto-shredding), the message
 * key of vanishing envelopes for per-message expiry, and what an expiry must report or delete.
 */
export class Vanishing1764000200000 implements MigrationInterface {
  name = 'Vanishing1764000200000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE expiry_keys (
        window_id   bigint PRIMARY KEY,
        key         bytea NOT NULL CHECK (octet_length(key) = 32),
        created_at  timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`ALTER TABLE envelopes ADD COLUMN key_window bigint NOT NULL DEFAULT 0`);
    await q.query(`CREATE INDEX envelopes_message ON envelopes (sender_account, sender_device, client_message_id) WHERE expires_at > 0`);
    await q.query(`ALTER TABLE message_sends ADD COLUMN expires_at bigint NOT NULL DEFAULT 0`);
    await q.query(`ALTER TABLE message_sends ADD COLUMN recipient_counts jsonb`);
    await q.query(`ALTER TABLE message_sends ADD COLUMN attachments jsonb`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE message_sends DROP COLUMN attachments');
    await q.query('ALTER TABLE message_sends DROP COLUMN recipient_counts');
    await q.query('ALTER TABLE message_sends DROP COLUMN expires_at');
    await q.query('DROP INDEX envelopes_message');
    await q.query('ALTER TABLE envelopes DROP COLUMN key_window');
    await q.query('DROP TABLE expiry_keys');
  }
}

import type { MigrationInterface, QueryRunner } from 'typeorm';

export class Prekeys1764000100000 implements MigrationInterface {
  name = 'Prekeys1764000100000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE prekeys (
        account_id  bytea NOT NULL,
        device_id   bigint NOT NULL,
        kind        smallint NOT NULL CHECK (kind BETWEEN 1 AND 4),
        key_id      bigint NOT NULL CHECK (key_id BETWEEN 0 AND 4294967295),
        record      bytea NOT NULL,
        created_at  timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (account_id, device_id, kind, key_id),
        FOREIGN KEY (account_id, device_id) REFERENCES devices(account_id, device_id) ON DELETE CASCADE
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE prekeys');
  }
}

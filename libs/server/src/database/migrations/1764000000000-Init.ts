import type { MigrationInterface, QueryRunner } from 'typeorm';

export class Init1764000000000 implements MigrationInterface {
  name = 'Init1764000000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE accounts (
        id                    bytea PRIMARY KEY CHECK (octet_length(id) = 32),
        aik                   bytea NOT NULL CHECK (octet_length(aik) = 32),
        suite                 integer NOT NULL,
        list_version          bigint NOT NULL,
        device_list           bytea NOT NULL,
        handle                text UNIQUE,
        handle_claim          bytea,
        handle_claim_version  bigint NOT NULL DEFAULT 0,
        created_at            timestamptz NOT NULL DEFAULT now(),
        updated_at            timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE devices (
        account_id    bytea NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        device_id     bigint NOT NULL CHECK (device_id BETWEEN 1 AND 4294967295),
        dik           bytea NOT NULL CHECK (octet_length(dik) = 32),
        flags         bigint NOT NULL,
        created_at_ms bigint NOT NULL,
        PRIMARY KEY (account_id, device_id)
      )`);
    await q.query(`
      CREATE TABLE auth_tokens (
        token_hash  bytea PRIMARY KEY,
        account_id  bytea NOT NULL,
        device_id   bigint NOT NULL,
        expires_at  bigint NOT NULL,
        created_at  timestamptz NOT NULL DEFAULT now(),
        FOREIGN KEY (account_id, device_id) REFERENCES devices(account_id, device_id) ON DELETE CASCADE
      )`);
    await q.query(`CREATE INDEX auth_tokens_device ON auth_tokens (account_id, device_id)`);
    await q.query(`CREATE INDEX auth_tokens_expires_at ON auth_tokens (expires_at)`);
    await q.query(`
      CREATE TABLE envelopes (
        seq                bigserial PRIMARY KEY,
        recipient_account  bytea NOT NULL,
        recipient_device   bigint NOT NULL,
        sender_account     bytea,
        sender_device      bigint,
        client_message_id  bytea NOT NULL,
        type               smallint NOT NULL,
        content            bytea NOT NULL,
        server_timestamp   bigint NOT NULL,
        expires_at         bigint NOT NULL DEFAULT 0,
        read_ttl_s         bigint NOT NULL DEFAULT 0,
        delete_at          bigint NOT NULL
      )`);
    await q.query(`CREATE INDEX envelopes_queue ON envelopes (recipient_account, recipient_device, seq)`);
    await q.query(`CREATE INDEX envelopes_delete_at ON envelopes (delete_at)`);
    await q.query(`
      CREATE TABLE message_sends (
        sender_account     bytea NOT NULL,
        sender_device      bigint NOT NULL,
        client_message_id  bytea NOT NULL,
        server_timestamp   bigint NOT NULL,
        delete_at          bigint NOT NULL,
        PRIMARY KEY (sender_account, sender_device, client_message_id)
      )`);
    await q.query(`CREATE INDEX message_sends_delete_at ON message_sends (delete_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE message_sends');
    await q.query('DROP TABLE envelopes');
    await q.query('DROP TABLE auth_tokens');
    await q.query('DROP TABLE devices');
    await q.query('DROP TABLE accounts');
  }
}

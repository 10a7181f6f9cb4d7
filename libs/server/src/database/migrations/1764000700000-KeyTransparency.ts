import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The key-transparency log of PROTOCOL.md §12 (services/key-directory/src/kt).
 *
 * - kt_pending: statements accepted but not yet in the tree. A trigger on `accounts` fills it in the
 *   same transaction that accepts a device list or a handle claim, whichever code path writes the row,
 *   so an accepted statement can never be missing from the log (MMD is about when, not whether).
 * - kt_leaves: the log, one row per KTLeaf, `idx` dense from 0 (one writer at a time: the sequencer
 *   holds a transaction-level advisory lock).
 * - kt_nodes: every complete subtree hash (level L, index i covers leaves i·2^L … (i+1)·2^L − 1), so an
 *   inclusion or consistency proof at 10^6 leaves reads at most a few dozen rows.
 * - kt_sths: every signed tree head, with the witness cosignatures collected for it, by log key.
 */
export class KeyTransparency1764000700000 implements MigrationInterface {
  name = 'KeyTransparency1764000700000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE kt_pending (
        id           bigserial PRIMARY KEY,
        type         smallint NOT NULL CHECK (type IN (1, 2)),
        account_id   bytea NOT NULL,
        handle       text,
        version      bigint NOT NULL,
        statement    bytea NOT NULL,
        enqueued_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
        CHECK (type = 1 OR handle IS NOT NULL)
      )`);
    await q.query(`
      CREATE TABLE kt_leaves (
        idx        bigint PRIMARY KEY CHECK (idx >= 0),
        type       smallint NOT NULL CHECK (type IN (1, 2)),
        label      bytea NOT NULL CHECK (octet_length(label) = 32),
        version    bigint NOT NULL,
        log_time   bigint NOT NULL,
        leaf       bytea NOT NULL CHECK (octet_length(leaf) = 82),
        statement  bytea NOT NULL
      )`);
    await q.query(`CREATE INDEX kt_leaves_label ON kt_leaves (label, type, idx)`);
    await q.query(`
      CREATE TABLE kt_nodes (
        level  smallint NOT NULL CHECK (level BETWEEN 0 AND 63),
        idx    bigint NOT NULL CHECK (idx >= 0),
        hash   bytea NOT NULL CHECK (octet_length(hash) = 32),
        PRIMARY KEY (level, idx)
      )`);
    await q.query(`
      CREATE TABLE kt_sths (
        id            bigserial PRIMARY KEY,
        log_id        bytea NOT NULL CHECK (octet_length(log_id) = 32),
        tree_size     bigint NOT NULL,
        "timestamp"   bigint NOT NULL,
        root          bytea NOT NULL,
        sth           bytea NOT NULL,
        cosignatures  bytea NOT NULL DEFAULT '\\x'::bytea,
        cosigners     integer NOT NULL DEFAULT 0,
        created_at    timestamptz NOT NULL DEFAULT now()
      )`);
    // One log key's tree heads, newest first (tests run logs with several keys over one tree).
    await q.query(`CREATE INDEX kt_sths_log ON kt_sths (log_id, id)`);
    await q.query(`
      CREATE FUNCTION kt_enqueue_account() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_OP = 'INSERT' OR NEW.list_version IS DISTINCT FROM OLD.list_version THEN
          INSERT INTO kt_pending (type, account_id, version, statement) VALUES (1, NEW.id, NEW.list_version, NEW.device_list);
        END IF;
        IF NEW.handle_claim IS NOT NULL AND NEW.handle IS NOT NULL
           AND (TG_OP = 'INSERT' OR NEW.handle_claim_version IS DISTINCT FROM OLD.handle_claim_version) THEN
          INSERT INTO kt_pending (type, account_id, handle, version, statement) VALUES (2, NEW.id, NEW.handle, NEW.handle_claim_version, NEW.handle_claim);
        END IF;
        RETURN NULL;
      END $$`);
    await q.query(`CREATE TRIGGER kt_enqueue AFTER INSERT OR UPDATE ON accounts FOR EACH ROW EXECUTE FUNCTION kt_enqueue_account()`);
    // Statements accepted before the log existed go in first.
    await q.query(`INSERT INTO kt_pending (type, account_id, version, statement) SELECT 1, id, list_version, device_list FROM accounts ORDER BY created_at, id`);
    await q.query(`
      INSERT INTO kt_pending (type, account_id, handle, version, statement)
      SELECT 2, id, handle, handle_claim_version, handle_claim FROM accounts WHERE handle IS NOT NULL AND handle_claim IS NOT NULL ORDER BY updated_at, id`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TRIGGER IF EXISTS kt_enqueue ON accounts`);
    await q.query(`DROP FUNCTION IF EXISTS kt_enqueue_account()`);
    await q.query(`DROP TABLE IF EXISTS kt_sths, kt_nodes, kt_leaves, kt_pending`);
  }
}

import type { MigrationInterface, QueryRunner } from 'typeorm';

export const DEFAULT_ENVELOPE_PARTITIONS = 16;
export const MAX_ENVELOPE_PARTITIONS = 1024;

const COLUMNS = `seq, recipient_account, recipient_device, sender_account, sender_device, client_message_id, type, content,
  server_timestamp, expires_at, read_ttl_s, delete_at, key_window`;

/** The `envelopes` columns as Init and Vanishing made them; `seq` keeps drawing from the original sequence. */
const TABLE_BODY = `(
  seq                bigint NOT NULL DEFAULT nextval('envelopes_seq_seq'),
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
  delete_at          bigint NOT NULL,
  key_window         bigint NOT NULL DEFAULT 0
)`;

/**
 * `envelopes` becomes PARTITION BY HASH (recipient_account), with `partitions` partitions
 * (ENVELOPE_PARTITIONS, read when this migration runs; changing it later repartitions nothing).
 *
 * The key is the recipient account alone, not (account, device): Citus distributes a table on one
 * column, and `recipient_device` alone is a small per-account number (1, 2, …) that would put most
 * rows in a few shards. Account ids are uniform 32-byte values, every device-queue query names the
 * account, and one account holds at most LIMITS.MAX_DEVICES_PER_ACCOUNT devices, so a partition here
 * is exactly a shard of create_distributed_table('envelopes', 'recipient_account'), colocated with
 * device_queues (see docs/scaling-postgres.md).
 *
 * The primary key becomes (recipient_account, recipient_device, seq): it must contain the partition
 * key, and it is the queue index (envelopes_queue is dropped). `seq` stays unique because every row
 * takes it from the one sequence. Rows are copied under an exclusive lock; device_queues needs no
 * recount (the same rows stay), and the counting triggers are recreated on the new parent, where
 * statement-level AFTER triggers with transition tables are allowed and see the rows of every partition.
 */
export class EnvelopePartitions implements MigrationInterface {
  name = 'EnvelopePartitions1764000800000';

  constructor(private readonly partitions: number) {
    if (!Number.isInteger(partitions) || partitions < 1 || partitions > MAX_ENVELOPE_PARTITIONS) {
      throw new Error(`ENVELOPE_PARTITIONS must be an integer from 1 to ${MAX_ENVELOPE_PARTITIONS}`);
    }
  }

  async up(q: QueryRunner): Promise<void> {
    await q.query('LOCK TABLE envelopes IN ACCESS EXCLUSIVE MODE');
    await q.query(`CREATE TABLE envelopes_partitioned ${TABLE_BODY} PARTITION BY HASH (recipient_account)`);
    for (let i = 0; i < this.partitions; i++) {
      await q.query(`CREATE TABLE envelopes_p${i} PARTITION OF envelopes_partitioned FOR VALUES WITH (MODULUS ${this.partitions}, REMAINDER ${i})`);
    }
    await q.query(`INSERT INTO envelopes_partitioned (${COLUMNS}) SELECT ${COLUMNS} FROM envelopes`);
    await this.swap(q, 'envelopes_partitioned');
    await q.query('ALTER TABLE envelopes ADD CONSTRAINT envelopes_pkey PRIMARY KEY (recipient_account, recipient_device, seq)');
    await this.recreate(q);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('LOCK TABLE envelopes IN ACCESS EXCLUSIVE MODE');
    await q.query(`CREATE TABLE envelopes_plain ${TABLE_BODY}`);
    await q.query(`INSERT INTO envelopes_plain (${COLUMNS}) SELECT ${COLUMNS} FROM envelopes ORDER BY seq`);
    await this.swap(q, 'envelopes_plain');
    await q.query('ALTER TABLE envelopes ADD CONSTRAINT envelopes_pkey PRIMARY KEY (seq)');
    await q.query('CREATE INDEX envelopes_queue ON envelopes (recipient_account, recipient_device, seq)');
    await this.recreate(q);
  }

  /** Replaces `envelopes` with `next` (dropping its partitions, if any), keeping the seq sequence. */
  private async swap(q: QueryRunner, next: string): Promise<void> {
    await q.query('ALTER SEQUENCE envelopes_seq_seq OWNED BY NONE');
    await q.query('DROP TABLE envelopes');
    await q.query(`ALTER TABLE ${next} RENAME TO envelopes`);
    await q.query('ALTER SEQUENCE envelopes_seq_seq OWNED BY envelopes.seq');
  }

  /** The indexes and triggers both shapes share (Init, Vanishing, DeviceQueues). */
  private async recreate(q: QueryRunner): Promise<void> {
    await q.query('CREATE INDEX envelopes_delete_at ON envelopes (delete_at)');
    await q.query('CREATE INDEX envelopes_message ON envelopes (sender_account, sender_device, client_message_id) WHERE expires_at > 0');
    await q.query(`
      CREATE TRIGGER envelopes_count_in AFTER INSERT ON envelopes
      REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION device_queues_count_in()`);
    await q.query(`
      CREATE TRIGGER envelopes_count_out AFTER DELETE ON envelopes
      REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION device_queues_count_out()`);
    await q.query('ANALYZE envelopes');
  }
}

/** The migration as TypeORM takes it (a class it constructs), with the partition count bound. */
export function envelopePartitionsMigration(partitions: number): new () => MigrationInterface {
  return class EnvelopePartitions1764000800000 extends EnvelopePartitions {
    constructor() {
      super(partitions);
    }
  };
}

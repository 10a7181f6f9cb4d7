import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The state of `umbra-witness` (PROTOCOL.md §12): per (witness key, log key), the last tree head it
 * cosigned. A row is locked (SELECT … FOR UPDATE) for the whole decision and updated in the same
 * transaction before the cosignature is returned, so replicas of one witness sharing a database never
 * cosign two conflicting heads. `forked` is sticky: once set (evidence of a fork in `fork_evidence`)
 * the witness cosigns nothing more for that log until an operator clears it.
 */
export class WitnessState1764000600000 implements MigrationInterface {
  name = 'WitnessState1764000600000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE witness_state (
        witness_id     bytea   NOT NULL CHECK (octet_length(witness_id) = 32),
        log_id         bytea   NOT NULL CHECK (octet_length(log_id) = 32),
        tree_size      bigint  CHECK (tree_size >= 0),
        root           bytea   CHECK (octet_length(root) = 32),
        sth_timestamp  bigint,
        cosigned_at    bigint,
        forked         boolean NOT NULL DEFAULT false,
        fork_evidence  jsonb,
        updated_at     timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (witness_id, log_id),
        CHECK ((tree_size IS NULL) = (root IS NULL))
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE witness_state');
  }
}

import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Acknowledged envelopes are deleted by `umbra_delete_acked(accounts, devices, seqs)`: one
 * primary-key probe per id, in the recipient's partition only, whatever the planner's estimates.
 *
 * The gateways' single `DELETE … USING unnest(…)` left the join to the planner. With a few
 * thousand rows queued it hashed the acked ids and scanned whole partitions; once the named
 * statement switched to its generic plan (after five executions), every partition, whatever the
 * accounts. 400 ids against 23,000 queued rows took 120–150 ms instead of 2–5 ms. The function
 * runs the same join with hash and merge joins and sequential scans off, which leaves a nested loop
 * over the ids with a primary-key index scan per id, pruned at run time to its account's partition.
 * Only the statement inside sees those settings.
 */
export class AckByPrimaryKey1764001000000 implements MigrationInterface {
  name = 'AckByPrimaryKey1764001000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE FUNCTION umbra_delete_acked(accounts bytea[], devices bigint[], seqs bigint[]) RETURNS bigint
      LANGUAGE plpgsql
      SET enable_hashjoin = off SET enable_mergejoin = off SET enable_seqscan = off
      AS $$
      DECLARE
        n bigint;
      BEGIN
        DELETE FROM envelopes e
        USING (SELECT * FROM unnest(accounts, devices, seqs) AS x(a, d, s) OFFSET 0) x
        WHERE e.recipient_account = x.a AND e.recipient_device = x.d AND e.seq = x.s;
        GET DIAGNOSTICS n = ROW_COUNT;
        RETURN n;
      END $$`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP FUNCTION umbra_delete_acked(bytea[], bigint[], bigint[])');
  }
}

/**
 * Row and commit counters of one Postgres database (pg_stat_database), for the delivery bench's
 * "Postgres rows per message". A busy backend publishes its counters when a transaction ends, at
 * most once a second (an idle one 10 s later): a window's edges are blurred by about a second of
 * work, which a steady window of several seconds averages out (the bench reports ratios).
 */
import { Client } from 'pg';

export interface PgCounters {
  inserted: number;
  updated: number;
  deleted: number;
  commits: number;
}

export class PgStats {
  private constructor(
    private readonly client: Client,
    private readonly database: string,
  ) {}

  static async open(databaseUrl: string): Promise<PgStats> {
    const database = decodeURIComponent(new URL(databaseUrl).pathname.replace(/^\//, ''));
    const client = new Client({ connectionString: databaseUrl });
    await client.connect();
    return new PgStats(client, database);
  }

  async read(): Promise<PgCounters> {
    // The statistics snapshot is cached per transaction: a fresh one per read.
    await this.client.query('SELECT pg_stat_clear_snapshot()');
    const row = (
      await this.client.query<{ inserted: string; updated: string; deleted: string; commits: string }>(
        `SELECT tup_inserted AS inserted, tup_updated AS updated, tup_deleted AS deleted, xact_commit AS commits
         FROM pg_stat_database WHERE datname = $1`,
        [this.database],
      )
    ).rows[0];
    if (!row) throw new Error(`pg_stat_database has no row for ${this.database}`);
    return { inserted: Number(row.inserted), updated: Number(row.updated), deleted: Number(row.deleted), commits: Number(row.commits) };
  }

  close(): Promise<void> {
    return this.client.end();
  }

  /** Rows per message and commits per second between two reads (the bench's monitoring queries add a few commits). */
  static perMessage(before: PgCounters, after: PgCounters, messages: number, seconds: number) {
    const per = (v: number) => (messages > 0 ? +(v / messages).toFixed(3) : null);
    return {
      pgRowsPerMsg: { inserted: per(after.inserted - before.inserted), updated: per(after.updated - before.updated), deleted: per(after.deleted - before.deleted) },
      pgCommitsPerS: Math.round((after.commits - before.commits) / seconds),
    };
  }
}

import type { DataSource } from 'typeorm';
import type { Clock } from '../core/clock';

/**
 * The time that destructive work trusts: this process's Clock corrected by its measured offset from
 * the Postgres server's clock. Every deadline was written against the same database, so a worker
 * whose wall clock runs fast deletes nothing early, and one that runs slow deletes nothing late.
 * Tests keep moving time with a ManualClock: the offset is measured against the real wall clock.
 */
export class DatabaseClock {
  private offsetMs = 0;
  private measuredAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly ds: DataSource,
    private readonly clock: Clock,
    private readonly refreshMs = 10_000,
    private readonly wall: () => number = Date.now,
  ) {}

  /** Milliseconds this process's wall clock is behind the database's (negative: ahead). */
  get offset(): number {
    return this.offsetMs;
  }

  async now(): Promise<number> {
    const t = this.wall();
    if (t - this.measuredAt > this.refreshMs || t < this.measuredAt) await this.measure();
    return this.clock.now() + this.offsetMs;
  }

  private async measure(): Promise<void> {
    const before = this.wall();
    const rows = (await this.ds.query(`SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS t`)) as { t: number | string }[];
    const after = this.wall();
    const t = Number(rows[0]!.t);
    // The database read its clock somewhere between `before` and `after`. An offset inside that
    // window cannot be told from zero (a loaded machine makes the window wide); outside it, the
    // clocks differ by at least the distance to the window.
    this.offsetMs = t < before ? Math.round(t - before) : t > after ? Math.round(t - after) : 0;
    this.measuredAt = after;
  }
}

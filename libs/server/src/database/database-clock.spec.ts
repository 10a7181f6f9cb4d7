import type { DataSource } from 'typeorm';
import { ManualClock } from '../core/clock';
import { DatabaseClock } from './database-clock';

/** A DataSource whose only permitted call is the clock query; anything else fails the test. */
function databaseAt(dbTime: () => number): { ds: DataSource; calls: () => number } {
  let calls = 0;
  const ds = {
    query: async (sql: string) => {
      if (!/clock_timestamp\(\)/.test(sql)) throw new Error(`unexpected query: ${sql}`);
      calls++;
      return [{ t: String(dbTime()) }];
    },
  } as unknown as DataSource;
  return { ds, calls: () => calls };
}

describe('DatabaseClock', () => {
  it('corrects a wall clock that runs 10 minutes fast to the database time', async () => {
    const real = 1_800_000_000_000;
    const fast = real + 600_000;
    const { ds } = databaseAt(() => real);
    const clock = new DatabaseClock(ds, new ManualClock(fast), 10_000, () => fast);
    expect(await clock.now()).toBe(real);
    expect(clock.offset).toBe(-600_000);
  });

  it('corrects a slow wall clock too', async () => {
    const real = 1_800_000_000_000;
    const { ds } = databaseAt(() => real);
    const clock = new DatabaseClock(ds, new ManualClock(real - 600_000), 10_000, () => real - 600_000);
    expect(await clock.now()).toBe(real);
  });

  it('keeps a manual clock movable (tests) and measures at most once per refresh interval', async () => {
    let wall = 1_000_000;
    const { ds, calls } = databaseAt(() => wall);
    const manual = new ManualClock(wall);
    const clock = new DatabaseClock(ds, manual, 10_000, () => wall);
    expect(await clock.now()).toBe(wall);
    manual.advance(86_400_000);
    expect(await clock.now()).toBe(wall + 86_400_000);
    expect(calls()).toBe(1);
    wall += 10_001;
    await clock.now();
    expect(calls()).toBe(2);
  });

  it('re-measures when the wall clock jumps backwards', async () => {
    let wall = 5_000_000;
    const { ds, calls } = databaseAt(() => 5_000_000);
    const clock = new DatabaseClock(ds, new ManualClock(wall), 10_000, () => wall);
    await clock.now();
    wall -= 1_000;
    await clock.now();
    expect(calls()).toBe(2);
  });

  it('applies no offset the round trip cannot tell from zero, and at least the distance outside it', async () => {
    // The wall clock moves 400 ms while the query runs (a loaded machine).
    let wall = 7_000_000;
    let dbAt = 0;
    const ds = { query: async () => { wall += 400; return [{ t: String(dbAt) }]; } } as unknown as DataSource;
    const inside = new DatabaseClock(ds, new ManualClock(7_000_000), 10_000, () => wall);
    dbAt = 7_000_050; // read 50 ms into a 400 ms window: the midpoint rule would say -150
    expect(await inside.now()).toBe(7_000_000);
    expect(inside.offset).toBe(0);

    wall = 7_000_000;
    dbAt = 7_001_400; // 1 s after the window closed
    const ahead = new DatabaseClock(ds, new ManualClock(7_000_000), 10_000, () => wall);
    await ahead.now();
    expect(ahead.offset).toBe(1_000);
  });
});

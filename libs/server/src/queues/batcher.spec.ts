import { Batcher } from './batcher';

describe('Batcher', () => {
  it('sends at once when idle, batches while a flush is under way, and drains', async () => {
    const batches: number[][] = [];
    const pending: (() => void)[] = [];
    const release = () => pending.splice(0).forEach((r) => r());
    const b = new Batcher<number>(3, 1000, (items) => {
      batches.push(items);
      return new Promise<void>((r) => pending.push(r));
    }, () => undefined);
    b.add(1);
    expect(batches).toEqual([[1]]);
    b.add(2);
    b.add(3);
    expect(batches).toEqual([[1]]);
    b.add(4);
    expect(batches).toEqual([[1], [2, 3, 4]]);
    b.add(5);
    release();
    await new Promise((r) => setTimeout(r, 5));
    expect(batches).toEqual([[1], [2, 3, 4], [5]]);
    release();
    await b.drain();
  });

  it('flushes after maxWaitMs when a flush stays under way', async () => {
    const batches: number[][] = [];
    const b = new Batcher<number>(100, 20, (items) => {
      batches.push(items);
      return batches.length === 1 ? new Promise<void>(() => undefined) : Promise.resolve();
    }, () => undefined);
    b.add(1);
    b.add(2);
    expect(batches).toEqual([[1]]);
    await new Promise((r) => setTimeout(r, 40));
    expect(batches).toEqual([[1], [2]]);
  });

  it('in window mode, waits maxWaitMs after the first item even when idle, or until maxItems', async () => {
    const batches: number[][] = [];
    const b = new Batcher<number>(3, 30, async (items) => void batches.push(items), () => undefined, { window: true });
    b.add(1);
    b.add(2);
    expect(batches).toEqual([]);
    await new Promise((r) => setTimeout(r, 10));
    expect(batches).toEqual([]);
    await new Promise((r) => setTimeout(r, 40));
    expect(batches).toEqual([[1, 2]]);
    b.add(3);
    b.add(4);
    b.add(5);
    expect(batches).toEqual([[1, 2], [3, 4, 5]]);
    b.add(6);
    await b.drain();
    expect(batches).toEqual([[1, 2], [3, 4, 5], [6]]);
  });

  it('hands a failed batch to onError', async () => {
    const failed: number[][] = [];
    const b = new Batcher<number>(10, 1, async () => {
      throw new Error('down');
    }, (_e, items) => failed.push(items));
    b.add(7);
    await b.drain();
    expect(failed).toEqual([[7]]);
  });
});

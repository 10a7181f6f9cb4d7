import { Batcher } from './batcher';

describe('Batcher', () => {
  it('flushes when full and after the wait, and drains what is in flight', async () => {
    const batches: number[][] = [];
    const b = new Batcher<number>(3, 20, async (items) => {
      batches.push(items);
    }, () => undefined);
    b.add(1);
    b.add(2);
    b.add(3);
    expect(batches).toEqual([[1, 2, 3]]);
    b.add(4);
    expect(batches).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 40));
    expect(batches).toEqual([[1, 2, 3], [4]]);
    b.add(5);
    await b.drain();
    expect(batches).toEqual([[1, 2, 3], [4], [5]]);
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

import { MergingRunner } from './merging-runner';

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (err: unknown) => void } {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

describe('MergingRunner', () => {
  it('runs a lone item at once, and merges the items submitted during a run into the next one', async () => {
    const runs: number[][] = [];
    const gates: ReturnType<typeof deferred>[] = [];
    const runner = new MergingRunner<number>(async (items) => {
      runs.push(items);
      const gate = deferred();
      gates.push(gate);
      await gate.promise;
    });
    const first = runner.submit(1);
    expect(runs).toEqual([[1]]);
    const rest = [runner.submit(2), runner.submit(3), runner.submit(4)];
    expect(runs).toEqual([[1]]);
    gates[0]!.resolve();
    await first;
    await new Promise((r) => setImmediate(r));
    expect(runs).toEqual([[1], [2, 3, 4]]);
    gates[1]!.resolve();
    await Promise.all(rest);
  });

  it('fails every item of a failed run and only those; the next run still happens', async () => {
    let calls = 0;
    const gate = deferred();
    const runner = new MergingRunner<string>(async (items) => {
      calls++;
      if (calls === 1) {
        await gate.promise;
        throw new Error('store down');
      }
      expect(items).toEqual(['b', 'c']);
    });
    const a = runner.submit('a');
    const b = runner.submit('b');
    const c = runner.submit('c');
    gate.resolve();
    await expect(a).rejects.toThrow('store down');
    await expect(Promise.all([b, c])).resolves.toEqual([undefined, undefined]);
    expect(calls).toBe(2);
  });

  it('caps a run at maxItems', async () => {
    const runs: number[][] = [];
    const gate = deferred();
    const runner = new MergingRunner<number>(async (items) => {
      runs.push(items);
      if (runs.length === 1) await gate.promise;
    }, 2);
    const all = [1, 2, 3, 4, 5].map((n) => runner.submit(n));
    gate.resolve();
    await Promise.all(all);
    expect(runs).toEqual([[1], [2, 3], [4, 5]]);
  });
});

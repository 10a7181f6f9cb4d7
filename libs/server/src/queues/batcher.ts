/**
 * Collects items and hands them to `flush` in batches. When no flush is under way an item goes out
 * at once (no added latency at low load); while one is under way items accumulate and go out
 * when it completes, when `maxItems` are waiting, or `maxWaitMs` after the first, whichever is
 * first. With `window: true` (work nobody waits on) items always wait: a batch goes out `maxWaitMs`
 * after its first item or at `maxItems`. `flush` errors go to `onError` with the batch.
 */
export class Batcher<T> {
  private items: T[] = [];
  private timer: NodeJS.Timeout | undefined;
  private inFlight = new Set<Promise<void>>();

  constructor(
    private readonly maxItems: number,
    private readonly maxWaitMs: number,
    private readonly flushFn: (items: T[]) => Promise<void>,
    private readonly onError: (err: unknown, items: T[]) => void,
    private readonly opts: { window?: boolean } = {},
  ) {}

  add(item: T): void {
    this.items.push(item);
    if (this.items.length >= this.maxItems || (this.inFlight.size === 0 && !this.opts.window)) this.flush();
    else if (!this.timer) this.timer = setTimeout(() => this.flush(), this.maxWaitMs);
  }

  flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.items.length === 0) return;
    const batch = this.items;
    this.items = [];
    const p = this.flushFn(batch)
      .catch((err: unknown) => this.onError(err, batch))
      .finally(() => {
        this.inFlight.delete(p);
        if (this.inFlight.size === 0 && this.items.length > 0 && !this.opts.window) this.flush();
      });
    this.inFlight.add(p);
  }

  /** Flushes what is waiting and waits for every flush under way. */
  async drain(): Promise<void> {
    this.flush();
    await Promise.all([...this.inFlight]);
  }
}

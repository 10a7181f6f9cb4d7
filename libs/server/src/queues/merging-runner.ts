/**
 * Runs `fn` over whatever was submitted, one run at a time: an item submitted while a run is under
 * way joins the next run, which starts as soon as the current one ends (no wait when idle). Each
 * submitter's promise settles with the outcome of the run that carried its item.
 */
export class MergingRunner<T> {
  private waiting: { item: T; resolve: () => void; reject: (err: unknown) => void }[] = [];
  private running = false;

  constructor(
    private readonly fn: (items: T[]) => Promise<void>,
    private readonly maxItems = Number.POSITIVE_INFINITY,
  ) {}

  submit(item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      if (!this.running) void this.loop();
    });
  }

  private async loop(): Promise<void> {
    this.running = true;
    while (this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.maxItems);
      try {
        await this.fn(batch.map((w) => w.item));
        for (const w of batch) w.resolve();
      } catch (err) {
        for (const w of batch) w.reject(err);
      }
    }
    this.running = false;
  }
}

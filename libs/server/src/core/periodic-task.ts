/**
 * Runs `fn` every `intervalMs` in this process, never two runs at once (a call while one is under
 * way joins it). Errors of timer-started runs go to `onError`; `stop` waits for a run under way.
 */
export class PeriodicTask<T> {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<T> | undefined;

  constructor(
    private readonly fn: () => Promise<T>,
    private readonly intervalMs: number,
    private readonly onError: (err: unknown) => void,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.run().catch(this.onError), this.intervalMs);
    this.timer.unref();
  }

  run(): Promise<T> {
    this.running ??= this.fn().finally(() => (this.running = undefined));
    return this.running;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running?.catch(() => undefined);
  }
}

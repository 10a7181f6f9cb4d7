import type { LocalState } from '../state/local.state';
import { STATE_KEYS } from '../state/state.keys';

/** How long after a batch of envelopes the window is written back. */
const PERSIST_DELAY_MS = 50;

/**
 * The last envelopes handled ("sender:device:clientMessageId"), so one delivered twice is handled
 * once. Only a hint (the Messenger's de-duplication is stored with each result): it is written a
 * little after each batch and on close.
 */
export class SeenWindow {
  private readonly order: string[] = [];
  private readonly set = new Set<string>();
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly state: LocalState,
    private readonly max: number,
  ) {}

  async load(): Promise<void> {
    for (const key of (await this.state.get(STATE_KEYS.seenEnvelopes)) ?? []) this.remember(key);
  }

  has(key: string): boolean {
    return this.set.has(key);
  }

  remember(key: string): void {
    if (this.set.has(key)) return;
    this.set.add(key);
    this.order.push(key);
    while (this.order.length > this.max) this.set.delete(this.order.shift()!);
  }

  persistSoon(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      // A failed write is retried with the next batch.
      this.state.set(STATE_KEYS.seenEnvelopes, this.order).catch(() => undefined);
    }, PERSIST_DELAY_MS);
  }

  /** Writes a pending update now (on close). */
  async flush(): Promise<void> {
    if (!this.timer) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.state.set(STATE_KEYS.seenEnvelopes, this.order);
  }
}

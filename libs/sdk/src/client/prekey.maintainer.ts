import { ROUTES, type KeyCountsResponse } from '@umbra/protocol';
import { Mutex } from '../mutex';
import { PrekeyManager } from '../prekeys';
import type { DeviceSession } from './device.session';

/** Keeps the server stocked with this device's prekeys and rotates the signed ones when due (PROTOCOL.md §2). */
export class PrekeyMaintainer {
  readonly prekeys: PrekeyManager;
  private readonly lock = new Mutex();
  private refilling: Promise<unknown> | undefined;
  private maintaining: Promise<void> | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly session: DeviceSession,
    prekeys: PrekeyManager,
    private readonly closed: () => boolean,
  ) {
    this.prekeys = prekeys;
  }

  refill(): Promise<KeyCountsResponse> {
    return this.lock.run(async () => {
      const counts = await this.session.api<KeyCountsResponse>('GET', ROUTES.keyCounts.path);
      const upload = await this.prekeys.buildUpload(counts);
      if (Object.keys(upload).length > 0) await this.session.api('PUT', ROUTES.uploadKeys.path, upload);
      await this.prekeys.markUploaded();
      return this.session.api<KeyCountsResponse>('GET', ROUTES.keyCounts.path);
    });
  }

  /** The server says the stock runs low: one refill at a time. */
  refillSoon(): void {
    this.refilling ??= this.refill()
      .catch(() => undefined)
      .finally(() => (this.refilling = undefined));
  }

  maintain(): Promise<void> {
    // One check at a time: the timer must not queue up checks behind a slow one.
    this.maintaining ??= (async () => {
      if (this.closed() || !(await this.prekeys.published())) return;
      if (await this.prekeys.rotationDue()) await this.refill();
      else await this.lock.run(() => this.prekeys.prune());
    })().finally(() => (this.maintaining = undefined));
    return this.maintaining;
  }

  /** Checks every `intervalMs` while `connected()`. */
  start(intervalMs: number, connected: () => boolean): void {
    this.timer = setInterval(() => {
      if (connected()) void this.maintain().catch(() => undefined);
    }, intervalMs);
    this.timer.unref?.();
  }

  /** Stops the timer and waits for a check under way. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.maintaining?.catch(() => undefined);
  }
}

import { LIMITS, type DeliveredEnvelope } from '@umbra/protocol';

/** How long an acknowledged id is remembered while the ack job deletes its row. */
const SETTLE_MS = 10_000;
/** Most acknowledged ids remembered per socket (the oldest are forgotten first; at worst one is pushed again). */
const SETTLE_MAX = 2 * LIMITS.DELIVERY_WINDOW_MESSAGES;
/** What an envelope adds to its content in a `messages` frame (ids, account id text, timestamps, JSON keys). */
const ENVELOPE_OVERHEAD_BYTES = 320;

export const envelopeBytes = (m: DeliveredEnvelope) => m.content.length + ENVELOPE_OVERHEAD_BYTES;

/**
 * One socket's delivery window: what was pushed and not yet acknowledged, never more than
 * DELIVERY_WINDOW_MESSAGES / _BYTES (one envelope always fits an empty window), and the ids
 * acknowledged moments ago, so they are not pushed twice while their rows are being deleted.
 */
export class DeliveryWindow {
  /** Pushed and not yet acknowledged: id → bytes. */
  private readonly inFlight = new Map<string, number>();
  private inFlightBytes = 0;
  /** Acknowledged ids whose rows may not be deleted yet: id → when acked. */
  private readonly settling = new Map<string, number>();
  /** When this socket last acknowledged anything (or connected). */
  lastAckAt = Date.now();
  /** The last drain stopped for lack of room; the next one starts when acks make room. */
  blocked = false;

  /** Envelopes pushed and not yet acknowledged. */
  get count(): number {
    return this.inFlight.size;
  }

  fits(bytes: number): boolean {
    if (this.inFlight.size === 0) return true;
    return this.inFlight.size < LIMITS.DELIVERY_WINDOW_MESSAGES && this.inFlightBytes + bytes <= LIMITS.DELIVERY_WINDOW_BYTES;
  }

  reserve(m: DeliveredEnvelope): void {
    const bytes = envelopeBytes(m);
    this.inFlight.set(m.id, bytes);
    this.inFlightBytes += bytes;
  }

  /** In flight, or acknowledged moments ago. */
  known(id: string): boolean {
    return this.inFlight.has(id) || this.settling.has(id);
  }

  /**
   * The client acknowledged these ids: they leave the window. `deleting` is false when the ack was
   * refused (rate limit): the rows stay queued and come again with a later drain.
   */
  acked(ids: string[], deleting: boolean): void {
    const now = Date.now();
    this.lastAckAt = now;
    for (const id of ids) {
      const bytes = this.inFlight.get(id);
      if (bytes === undefined) continue;
      this.inFlight.delete(id);
      this.inFlightBytes -= bytes;
      if (deleting) this.settle(id, now);
      this.blocked = false;
    }
  }

  release(id: string): void {
    const bytes = this.inFlight.get(id);
    if (bytes === undefined) return;
    this.inFlight.delete(id);
    this.inFlightBytes -= bytes;
    this.blocked = false;
  }

  /** Its row is gone (expired, recalled): neither in flight nor remembered. */
  drop(id: string): void {
    this.release(id);
    this.settling.delete(id);
  }

  /** Forgets the acknowledged ids remembered for SETTLE_MS. */
  sweep(now: number): void {
    for (const [id, at] of this.settling) {
      if (now - at < SETTLE_MS) break;
      this.settling.delete(id);
    }
  }

  inFlightIds(): string[] {
    return [...this.inFlight.keys()];
  }

  private settle(id: string, now: number): void {
    this.settling.set(id, now);
    if (this.settling.size > SETTLE_MAX) this.settling.delete(this.settling.keys().next().value!);
  }
}

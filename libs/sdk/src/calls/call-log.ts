import type { KeyValueStore } from '../store';
import type { EndReason } from './call.machine';
import type { Media } from './call-signal';

/** One finished call as this device saw it. */
export interface CallLogEntry {
  callId: string;
  peer: string;
  direction: 'incoming' | 'outgoing';
  media: Media;
  /** `answered` when media connected (unless the call then failed); otherwise why it ended (missed, declined, busy, no_answer, failed…). */
  outcome: 'answered' | EndReason;
  startedAt: number;
  /** When media connected (answered calls). */
  connectedAt?: number;
  endedAt: number;
  /** Connected time in ms; 0 for a call that never connected. */
  durationMs: number;
}

const PREFIX = 'calls/log/';
const MAX_ENTRIES = 500;

/** The call history in the SDK store, newest first. */
export class CallLog {
  constructor(private readonly store: KeyValueStore) {}

  async add(entry: CallLogEntry): Promise<void> {
    await this.store.set(`${PREFIX}${String(entry.startedAt).padStart(15, '0')}/${entry.callId}`, JSON.stringify(entry));
    const keys = (await this.store.keys(PREFIX)).sort();
    for (const old of keys.slice(0, Math.max(0, keys.length - MAX_ENTRIES))) await this.store.delete(old);
  }

  async list(): Promise<CallLogEntry[]> {
    const keys = (await this.store.keys(PREFIX)).sort().reverse();
    const out: CallLogEntry[] = [];
    for (const k of keys) {
      const raw = await this.store.get(k);
      if (raw) out.push(JSON.parse(raw) as CallLogEntry);
    }
    return out;
  }
}

const SIGNALS_PREFIX = 'calls/signals/';
/** Long enough for a signal's envelope (60 s) to expire and its receipt to arrive late. */
const SIGNAL_ID_TTL_MS = 24 * 3600_000;
const PRUNE_EVERY_MS = 60_000;

/**
 * The client message ids of the call signals this account's devices sent (in the shared store), so
 * that the servers' expiry receipt for a signal nobody fetched in time is not shown as a vanished
 * message: the servers cannot tell a call signal from a chat message.
 */
export class CallSignalIds {
  private prunedAt = 0;

  constructor(
    private readonly store: KeyValueStore,
    private readonly now: () => number = () => Date.now(),
  ) {}

  async add(clientMessageId: string): Promise<void> {
    const at = this.now();
    await this.store.set(`${SIGNALS_PREFIX}${clientMessageId}`, String(at));
    if (at - this.prunedAt < PRUNE_EVERY_MS) return;
    this.prunedAt = at;
    for (const k of await this.store.keys(SIGNALS_PREFIX)) {
      const sentAt = Number(await this.store.get(k));
      if (!(sentAt > at - SIGNAL_ID_TTL_MS)) await this.store.delete(k);
    }
  }

  async has(clientMessageId: string): Promise<boolean> {
    return (await this.store.get(`${SIGNALS_PREFIX}${clientMessageId}`)) !== undefined;
  }
}

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

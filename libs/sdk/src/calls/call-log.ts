import { LocalState } from '../state/local.state';
import { STATE_FAMILIES } from '../state/state.keys';
import type { KeyValueStore } from '../store';
import type { EndReason } from './call.machine';
import type { CallSession } from './call.session';
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

const MAX_ENTRIES = 500;
const LOG = STATE_FAMILIES.callLog;
const SIGNALS = STATE_FAMILIES.callSignal;

/** The call history in the SDK store, newest first. */
export class CallLog {
  private readonly state: LocalState;

  constructor(store: KeyValueStore) {
    this.state = new LocalState(store);
  }

  async add(entry: CallLogEntry): Promise<void> {
    await this.state.set(LOG.key(`${String(entry.startedAt).padStart(15, '0')}/${entry.callId}`), entry);
    const suffixes = (await this.state.suffixes(LOG)).sort();
    for (const old of suffixes.slice(0, Math.max(0, suffixes.length - MAX_ENTRIES))) await this.state.delete(LOG.key(old));
  }

  /** A call this device took part in, ended at `endedAt`: answered when media connected (unless it then failed). */
  addEnded(s: CallSession, reason: EndReason, endedAt: number): Promise<void> {
    const connectedAt = s.connectedAt;
    return this.add({
      callId: s.callId, peer: s.peer, direction: s.role === 'caller' ? 'outgoing' : 'incoming', media: s.media,
      outcome: connectedAt !== undefined && reason !== 'failed' ? 'answered' : reason, startedAt: s.startedAt, endedAt,
      ...(connectedAt !== undefined ? { connectedAt } : {}), durationMs: connectedAt !== undefined ? endedAt - connectedAt : 0,
    });
  }

  async list(): Promise<CallLogEntry[]> {
    const out: CallLogEntry[] = [];
    for (const suffix of (await this.state.suffixes(LOG)).sort().reverse()) {
      const entry = await this.state.get(LOG.key(suffix));
      if (entry) out.push(entry);
    }
    return out;
  }
}

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
  private readonly state: LocalState;

  constructor(
    store: KeyValueStore,
    private readonly now: () => number = () => Date.now(),
  ) {
    this.state = new LocalState(store);
  }

  async add(clientMessageId: string): Promise<void> {
    const at = this.now();
    await this.state.set(SIGNALS.key(clientMessageId), at);
    if (at - this.prunedAt < PRUNE_EVERY_MS) return;
    this.prunedAt = at;
    for (const suffix of await this.state.suffixes(SIGNALS)) {
      const sentAt = await this.state.get(SIGNALS.key(suffix));
      if (!(sentAt !== undefined && sentAt > at - SIGNAL_ID_TTL_MS)) await this.state.delete(SIGNALS.key(suffix));
    }
  }

  has(clientMessageId: string): Promise<boolean> {
    return this.state.has(SIGNALS.key(clientMessageId));
  }
}

import { READ_MODE_BOUND_MS, type Content } from '@umbra/crypto';
import { LocalState } from './state/local.state';
import { STATE_FAMILIES, STATE_KEYS } from './state/state.keys';
import type { KeyValueStore } from './store';

export interface Timer {
  t: number;
  m: 'send' | 'read';
}

export interface HistoryEntry {
  /** Conversation: the peer account ("um1…") or the group id. */
  conv: string;
  /** Content.id */
  id: string;
  from: string;
  fromDevice: number;
  outgoing: boolean;
  content: Content;
  serverTimestamp: number;
  receivedAt: number;
  /** When this device deletes it (ms); null: kept until deleted by hand. */
  deleteAt: number | null;
  readAt?: number;
  /** "sender:device:clientMessageId" of the envelope it came (or, when this device sent it, went) in: for "expired" events and recall. */
  envelope?: string;
  /** Server id of that envelope, for read reports. */
  envelopeId?: string;
  /** The latest edit by the author (Content{k:"edit"}): show this text, marked as edited. */
  edited?: { text: string; ts: number; id: string };
  /** One reaction per account (Content{k:"react"}); an empty emoji is a removed reaction. */
  reactions?: Record<string, { emoji: string; ts: number; id: string }>;
  /** For our own messages: when each recipient account's devices reported it delivered and read (Content{k:"rcpt"}). */
  receipts?: Record<string, { delivered?: number; read?: number }>;
}

/** Where an entry is: its conversation and Content.id. */
interface EntryRef {
  conv: string;
  id: string;
}

/**
 * The local message history, with vanishing timers enforced on this device (§8): an entry is
 * deleted when its deadline passes — on a timer, when the store is opened, and whenever a message
 * arrives — and a message whose deadline has passed before it arrived is never stored.
 */
export class History {
  /** By stored name: the entry and its deadline. */
  private readonly deadlines = new Map<string, EntryRef & { at: number }>();
  private readonly byEnvelope = new Map<string, EntryRef>();
  /** By stored name: the envelope the entry came in. */
  private readonly envelopeOf = new Map<string, string>();
  private readonly state: LocalState;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  private readonly expiredHandlers = new Set<(gone: { conv: string; id: string }[]) => void>();

  private constructor(
    store: KeyValueStore,
    private readonly now: () => number,
  ) {
    this.state = new LocalState(store);
  }

  static async open(store: KeyValueStore, now: () => number): Promise<History> {
    const h = new History(store, now);
    for (const { value } of await h.state.entries(STATE_FAMILIES.history)) h.index(value);
    await h.purgeExpired();
    return h;
  }

  /** The deadline of a message on this device (§8), or null without a timer. */
  static deadline(content: Content, serverTimestamp: number, receivedAt: number, outgoing: boolean): number | null {
    const exp = content.exp;
    if (!exp) return null;
    if (exp.m === 'send') return Math.min(content.ts, serverTimestamp || content.ts, receivedAt) + 1000 * exp.t;
    // Read mode: our own messages count as displayed when sent.
    return outgoing ? content.ts + 1000 * exp.t : content.ts + 1000 * exp.t + READ_MODE_BOUND_MS;
  }

  /** Stores an entry unless its deadline has already passed; `kv` is the receive's batch when given. */
  async add(entry: HistoryEntry, kv?: KeyValueStore): Promise<boolean> {
    if (entry.deleteAt !== null && entry.deleteAt <= this.now()) return false;
    await (kv ? new LocalState(kv) : this.state).set(STATE_KEYS.history(entry.conv, entry.id), entry);
    this.index(entry);
    this.schedule();
    return true;
  }

  async get(conv: string, id: string): Promise<HistoryEntry | undefined> {
    const e = await this.state.get(STATE_KEYS.history(conv, id));
    if (!e) return undefined;
    return e.deleteAt !== null && e.deleteAt <= this.now() ? undefined : e;
  }

  /** A conversation's messages, oldest first; never one whose deadline has passed. */
  async list(conv: string): Promise<HistoryEntry[]> {
    await this.purgeExpired();
    const out = (await this.state.entries(STATE_FAMILIES.history, `${conv}/`)).map((e) => e.value);
    return out.sort((a, b) => a.content.ts - b.content.ts || a.id.localeCompare(b.id));
  }

  /** First display of a read-mode message starts its timer. Returns the entry as updated. */
  async markRead(conv: string, id: string): Promise<HistoryEntry | undefined> {
    const e = await this.get(conv, id);
    if (!e || e.readAt !== undefined) return e;
    const now = this.now();
    e.readAt = now;
    if (e.content.exp?.m === 'read' && e.deleteAt !== null) e.deleteAt = Math.min(e.deleteAt, now + 1000 * e.content.exp.t);
    await this.add(e);
    if (e.deleteAt !== null && e.deleteAt <= now) await this.remove({ conv, id });
    return e;
  }

  /** The server deleted these envelopes because their messages vanished: delete our copies too. */
  async deleteByEnvelopes(envelopes: string[]): Promise<number> {
    let n = 0;
    for (const env of envelopes) {
      const ref = this.byEnvelope.get(env);
      if (ref) {
        await this.remove(ref);
        n++;
      }
    }
    return n;
  }

  /** The entry that arrived in (or, for our own sends, went out as) this "sender:device:clientMessageId". */
  async findByEnvelope(envelope: string): Promise<HistoryEntry | undefined> {
    const ref = this.byEnvelope.get(envelope);
    return ref ? this.state.get(STATE_KEYS.history(ref.conv, ref.id)) : undefined;
  }

  async delete(conv: string, id: string): Promise<void> {
    await this.remove({ conv, id });
  }

  /** Deletes every entry whose deadline has passed; returns how many. */
  async purgeExpired(): Promise<number> {
    const now = this.now();
    const gone: EntryRef[] = [];
    for (const { conv, id, at } of [...this.deadlines.values()]) {
      if (at <= now) {
        await this.remove({ conv, id });
        gone.push({ conv, id });
      }
    }
    this.schedule();
    if (gone.length > 0) for (const h of this.expiredHandlers) h(gone);
    return gone.length;
  }

  /** Calls `handler` with the entries purgeExpired deleted (their deadline passed), once they are gone. */
  onExpired(handler: (gone: { conv: string; id: string }[]) => void): () => void {
    this.expiredHandlers.add(handler);
    return () => void this.expiredHandlers.delete(handler);
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private index(e: HistoryEntry): void {
    const name = STATE_KEYS.history(e.conv, e.id).name;
    if (e.deleteAt !== null) this.deadlines.set(name, { conv: e.conv, id: e.id, at: e.deleteAt });
    else this.deadlines.delete(name);
    if (e.envelope) {
      this.byEnvelope.set(e.envelope, { conv: e.conv, id: e.id });
      this.envelopeOf.set(name, e.envelope);
    }
  }

  private async remove(ref: EntryRef): Promise<void> {
    const key = STATE_KEYS.history(ref.conv, ref.id);
    await this.state.delete(key);
    this.deadlines.delete(key.name);
    const env = this.envelopeOf.get(key.name);
    if (env !== undefined) {
      this.byEnvelope.delete(env);
      this.envelopeOf.delete(key.name);
    }
  }

  private schedule(): void {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.deadlines.size === 0) return;
    let next = Infinity;
    for (const { at } of this.deadlines.values()) if (at < next) next = at;
    this.timer = setTimeout(() => void this.purgeExpired().catch(() => undefined), Math.min(Math.max(0, next - this.now()), 2 ** 31 - 1));
    this.timer.unref?.();
  }
}

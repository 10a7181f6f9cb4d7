import { READ_MODE_BOUND_MS, type Content } from '@umbra/crypto';
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

const KEY = (conv: string, id: string) => `history/${conv}/${id}`;

/**
 * The local message history, with vanishing timers enforced on this device (§8): an entry is
 * deleted when its deadline passes — on a timer, when the store is opened, and whenever a message
 * arrives — and a message whose deadline has passed before it arrived is never stored.
 */
export class History {
  private readonly deadlines = new Map<string, number>();
  private readonly byEnvelope = new Map<string, string>();
  private readonly envelopeOf = new Map<string, string>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  private readonly expiredHandlers = new Set<(gone: { conv: string; id: string }[]) => void>();

  private constructor(
    private readonly store: KeyValueStore,
    private readonly now: () => number,
  ) {}

  static async open(store: KeyValueStore, now: () => number): Promise<History> {
    const h = new History(store, now);
    for (const key of await store.keys('history/')) {
      const raw = await store.get(key);
      if (!raw) continue;
      const e = JSON.parse(raw) as HistoryEntry;
      h.index(key, e);
    }
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
  async add(entry: HistoryEntry, kv: KeyValueStore = this.store): Promise<boolean> {
    if (entry.deleteAt !== null && entry.deleteAt <= this.now()) return false;
    const key = KEY(entry.conv, entry.id);
    await kv.set(key, JSON.stringify(entry));
    this.index(key, entry);
    this.schedule();
    return true;
  }

  async get(conv: string, id: string): Promise<HistoryEntry | undefined> {
    const raw = await this.store.get(KEY(conv, id));
    if (!raw) return undefined;
    const e = JSON.parse(raw) as HistoryEntry;
    return e.deleteAt !== null && e.deleteAt <= this.now() ? undefined : e;
  }

  /** A conversation's messages, oldest first; never one whose deadline has passed. */
  async list(conv: string): Promise<HistoryEntry[]> {
    await this.purgeExpired();
    const out: HistoryEntry[] = [];
    for (const key of await this.store.keys(`history/${conv}/`)) {
      const raw = await this.store.get(key);
      if (raw) out.push(JSON.parse(raw) as HistoryEntry);
    }
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
    if (e.deleteAt !== null && e.deleteAt <= now) await this.remove(KEY(conv, id));
    return e;
  }

  /** The server deleted these envelopes because their messages vanished: delete our copies too. */
  async deleteByEnvelopes(envelopes: string[]): Promise<number> {
    let n = 0;
    for (const env of envelopes) {
      const key = this.byEnvelope.get(env);
      if (key) {
        await this.remove(key);
        n++;
      }
    }
    return n;
  }

  /** The entry that arrived in (or, for our own sends, went out as) this "sender:device:clientMessageId". */
  async findByEnvelope(envelope: string): Promise<HistoryEntry | undefined> {
    const key = this.byEnvelope.get(envelope);
    if (!key) return undefined;
    const raw = await this.store.get(key);
    return raw ? (JSON.parse(raw) as HistoryEntry) : undefined;
  }

  async delete(conv: string, id: string): Promise<void> {
    await this.remove(KEY(conv, id));
  }

  /** Deletes every entry whose deadline has passed; returns how many. */
  async purgeExpired(): Promise<number> {
    const now = this.now();
    const gone: { conv: string; id: string }[] = [];
    for (const [key, at] of [...this.deadlines]) {
      if (at <= now) {
        await this.remove(key);
        const [, conv = '', id = ''] = key.split('/');
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

  private index(key: string, e: HistoryEntry): void {
    if (e.deleteAt !== null) this.deadlines.set(key, e.deleteAt);
    else this.deadlines.delete(key);
    if (e.envelope) {
      this.byEnvelope.set(e.envelope, key);
      this.envelopeOf.set(key, e.envelope);
    }
  }

  private async remove(key: string): Promise<void> {
    await this.store.delete(key);
    this.deadlines.delete(key);
    const env = this.envelopeOf.get(key);
    if (env !== undefined) {
      this.byEnvelope.delete(env);
      this.envelopeOf.delete(key);
    }
  }

  private schedule(): void {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.deadlines.size === 0) return;
    let next = Infinity;
    for (const at of this.deadlines.values()) if (at < next) next = at;
    this.timer = setTimeout(() => void this.purgeExpired().catch(() => undefined), Math.min(Math.max(0, next - this.now()), 2 ** 31 - 1));
    this.timer.unref?.();
  }
}

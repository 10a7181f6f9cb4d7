import type { KeyValueStore, UmbraEventOf, VanishedMessage } from '@umbra/sdk';
import { shortId, toChatMessage, type ChatMessage, type Conversation } from './conversation.model';
import type { WebUmbra } from './session.service';

/** The page's own entries in the SDK's store. */
const LABEL = (id: string) => `web/label/${id}`;
const STARTED_PREFIX = 'web/conv/';
const STARTED = (conv: string) => `${STARTED_PREFIX}${conv}`;
/** How long a "typing" lasts without a new one (the sender repeats it every few seconds). */
const TYPING_SHOWN_MS = 6000;
const SHOWN_KINDS = new Set(['text', 'att']);

/**
 * The conversations the page shows, 1:1 and groups, rebuilt from the SDK's history (so edits,
 * reactions, receipts, deletions and vanishing timers are whatever the history says) plus the
 * messages still being sent. Views subscribe and re-render on every change.
 */
export class ConversationStore {
  private readonly conversations = new Map<string, Conversation>();
  private readonly pending = new Map<string, ChatMessage[]>();
  private readonly refreshSeq = new Map<string, number>();
  private readonly listeners = new Set<() => void>();
  private readonly deliveredQueue = new Map<string, string[]>();
  private deliveredTimer: ReturnType<typeof setTimeout> | undefined;
  private tick: ReturnType<typeof setInterval> | undefined;
  private version = 0;
  private readonly offs: (() => void)[] = [];

  constructor(
    private readonly umbra: WebUmbra,
    /** The SDK's store, for the page's own `web/` entries (labels, chats opened before their first message). */
    private readonly store: KeyValueStore,
  ) {}

  private get me(): string {
    return this.umbra.account.id;
  }

  /** Loads every conversation this device has and follows the SDK's events from now on. */
  async start(): Promise<void> {
    const ids = new Set(await this.umbra.messages.conversations());
    for (const g of await this.umbra.groups.list()) ids.add(g.gid);
    for (const key of await this.store.keys(STARTED_PREFIX)) ids.add(key.slice(STARTED_PREFIX.length));
    for (const id of ids) await this.refresh(id);
    this.offs.push(
      this.umbra.on('message', (e) => this.received(e)),
      this.umbra.on('update', (e) => void this.refresh(e.conv)),
      this.umbra.on('group', (e) => void this.refresh(e.gid)),
      this.umbra.on('timer', (e) => {
        // Heard inside the receive's store batch, before it commits: shown now, read back a moment later.
        const c = this.conversations.get(e.conv);
        if (c) {
          c.timer = e.timer;
          this.changed();
        }
        setTimeout(() => void this.refresh(e.conv), 200);
      }),
      this.umbra.on('receipt', (e) => {
        if (e.kind !== 'expired-unread') void this.refresh(e.conv);
      }),
      // The history has deleted them by now.
      this.umbra.on('expired', (e) => this.vanished(e.messages)),
      this.umbra.on('recalled', (e) => this.vanished(e.messages)),
      this.umbra.on('typing', (e) => {
        const c = this.conversations.get(e.conv);
        if (!c || e.from === this.me) return;
        c.typingUntil = e.state === 'started' ? Date.now() + TYPING_SHOWN_MS : undefined;
        this.changed();
      }),
    );
    this.tick = setInterval(() => this.everySecond(), 1000);
  }

  stop(): void {
    for (const off of this.offs.splice(0)) off();
    if (this.tick) clearInterval(this.tick);
    if (this.deliveredTimer) clearTimeout(this.deliveredTimer);
  }

  /** Changes whenever a conversation does (for the views). */
  get revision(): number {
    return this.version;
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  list(): Conversation[] {
    const last = (c: Conversation) => c.messages.at(-1)?.at ?? 0;
    return [...this.conversations.values()].sort((a, b) => last(b) - last(a));
  }

  get(id: string): Conversation | undefined {
    return this.conversations.get(id);
  }

  /** A display name for an account or group: its stored label, else a short id. */
  async label(id: string): Promise<string> {
    return (await this.store.get(LABEL(id))) ?? shortId(id);
  }

  async setLabel(id: string, label: string): Promise<void> {
    await this.store.set(LABEL(id), label);
  }

  /** Opens (creating when new) the conversation with `id`, remembered across reloads even before its first message. */
  async open(id: string, label?: string): Promise<Conversation> {
    if (label) await this.setLabel(id, label);
    await this.store.set(STARTED(id), '1');
    return this.refresh(id);
  }

  /** Shows an outgoing message at once; `settle` removes it once the history has it (or marks it failed). */
  addPending(conv: string, text: string): ChatMessage {
    const m: ChatMessage = { id: `pending-${crypto.randomUUID()}`, conv, from: this.me, outgoing: true, text, at: Date.now(), state: 'sending', edited: false, reactions: [], deleteAt: null };
    this.pending.set(conv, [...(this.pending.get(conv) ?? []), m]);
    void this.refresh(conv);
    return m;
  }

  async settle(m: ChatMessage, ok: boolean): Promise<void> {
    if (ok) this.pending.set(m.conv, (this.pending.get(m.conv) ?? []).filter((x) => x !== m));
    else m.state = 'failed';
    await this.refresh(m.conv);
  }

  /** Re-reads one conversation from the history (the latest of overlapping refreshes wins). */
  async refresh(id: string): Promise<Conversation> {
    const seq = (this.refreshSeq.get(id) ?? 0) + 1;
    this.refreshSeq.set(id, seq);
    const [entries, timer, group, stored] = await Promise.all([this.umbra.messages.history(id), this.umbra.messages.timer(id), this.umbra.groups.get(id), this.store.get(LABEL(id))]);
    const messages: ChatMessage[] = [];
    let unread = 0;
    for (const e of entries) {
      const m = toChatMessage(e, this.me);
      if (!m) continue;
      messages.push(m);
      if (!e.outgoing && e.readAt === undefined) unread++;
    }
    messages.push(...(this.pending.get(id) ?? []));
    const names: Record<string, string> = { [this.me]: 'You' };
    for (const account of group ? group.members : [id]) if (account !== this.me) names[account] = await this.label(account);
    const prev = this.conversations.get(id);
    if (this.refreshSeq.get(id) !== seq && prev) return prev;
    const c: Conversation = {
      id,
      kind: group ? 'group' : 'direct',
      label: group?.name ?? stored ?? (group ? 'Group' : shortId(id)),
      unread,
      messages,
      timer,
      names,
      ...(group ? { group } : {}),
      ...(prev?.typingUntil ? { typingUntil: prev.typingUntil } : {}),
    };
    this.conversations.set(id, c);
    this.changed();
    return c;
  }

  /** Conversations that lost messages are read again (all of them when the servers named only envelopes). */
  private vanished(messages: VanishedMessage[]): void {
    const convs = new Set(messages.map((m) => m.conv));
    const ids = convs.has(undefined) ? [...this.conversations.keys()] : [...convs].filter((c): c is string => c !== undefined);
    for (const id of ids) void this.refresh(id);
  }

  private received({ conv, message: m }: UmbraEventOf<'message'>): void {
    if (!SHOWN_KINDS.has(m.content.k)) return;
    void this.refresh(conv);
    if (m.sync || m.from === this.me) return;
    const typing = this.conversations.get(conv);
    if (typing?.typingUntil) typing.typingUntil = undefined;
    this.queueDelivered(conv, m.content.id);
  }

  /** Delivery receipts go out in one batch per conversation, a moment after a burst of messages. */
  private queueDelivered(conv: string, id: string): void {
    this.deliveredQueue.set(conv, [...(this.deliveredQueue.get(conv) ?? []), id]);
    this.deliveredTimer ??= setTimeout(() => {
      this.deliveredTimer = undefined;
      const batches = [...this.deliveredQueue];
      this.deliveredQueue.clear();
      for (const [c, ids] of batches) void this.umbra.messages.markDelivered(c, ids).catch(() => undefined);
    }, 300);
  }

  /** Vanished messages leave the page (the history purges them on its own timer); typing runs out. */
  private everySecond(): void {
    const now = Date.now();
    for (const c of this.conversations.values()) {
      if (c.messages.some((m) => m.deleteAt !== null && m.deleteAt <= now)) void this.refresh(c.id);
      if (c.typingUntil && c.typingUntil <= now) {
        c.typingUntil = undefined;
        this.changed();
      }
    }
  }

  private changed(): void {
    this.version++;
    for (const l of this.listeners) l();
  }
}

import { Messenger, UmbraApiError, UmbraClient, type HistoryEntry, type PowSolver, type ReceivedMessage } from '@umbra/sdk';
import { IdbStore, StoredStateError } from './idb.store';

export type DeliveryState = 'sending' | 'stored' | 'failed';

export interface ChatMessage {
  /** Content id. */
  id: string;
  conv: string;
  outgoing: boolean;
  text: string;
  at: number;
  state?: DeliveryState;
}

export interface Conversation {
  /** The peer's account id. */
  id: string;
  label: string;
  unread: number;
  messages: ChatMessage[];
}

const HANDLE = /^[a-z0-9_]{3,32}$/;
/** The IndexedDB database holding this browser's device. */
export const DEVICE_DB = 'umbra-device';
/** The page's own entries in the SDK's store: a conversation's display name, the own handle. */
const LABEL = (conv: string) => `web/label/${conv}`;
const OWN_HANDLE = 'web/handle';

/** A handle as the server stores it, or an error message for the form. */
export function parseHandle(text: string): { handle: string } | { error: string } {
  const handle = text.trim().replace(/^@/, '').toLowerCase();
  return HANDLE.test(handle) ? { handle } : { error: 'A handle is 3–32 letters a–z, digits or _.' };
}

/** What a person reads when an SDK call fails. */
export function describeError(err: unknown): string {
  if (err instanceof UmbraApiError) {
    if (err.code === 'HANDLE_TAKEN') return 'That handle belongs to another account.';
    if (err.code === 'ACCOUNT_NOT_FOUND' || err.status === 404) return 'No account has that handle or id.';
    if (err.status === 429) return 'Too many requests; wait a moment and try again.';
    if (err.status >= 500) return 'The server is unavailable; try again shortly.';
    return err.message;
  }
  if (err instanceof StoredStateError) return `${err.message}. Wipe this device to start again.`;
  if (err instanceof TypeError) return 'Cannot reach the server; check the connection.';
  return err instanceof Error ? err.message : String(err);
}

/**
 * This browser's Umbra device: the SDK's client and messenger over an encrypted IndexedDB store,
 * and the conversations the page shows (rebuilt from the SDK's history after a reload).
 */
export class WebSession {
  private readonly conversations = new Map<string, Conversation>();
  private readonly listeners = new Set<() => void>();
  private version = 0;

  private constructor(
    readonly client: UmbraClient,
    readonly messenger: Messenger,
    private readonly store: IdbStore,
    readonly handle: string | undefined,
    /** Set when the account was created but the wanted handle could not be claimed. */
    readonly handleError: string | undefined,
  ) {
    messenger.on('message', (m) => this.received(m));
  }

  /** A new identity on this origin: proof of work (through `solvePow`), registration, prekeys, the handle, the socket. */
  static async createAccount(opts: { origin: string; handle?: string; solvePow: PowSolver }): Promise<WebSession> {
    // A half-made device (closed during registration) is replaced.
    await IdbStore.wipe(DEVICE_DB);
    const store = await IdbStore.open(DEVICE_DB);
    const client = await UmbraClient.open({ serverUrl: opts.origin, store });
    await client.createIdentity();
    await client.register({ solvePow: opts.solvePow });
    await client.refillPrekeys();
    let handle: string | undefined;
    let handleError: string | undefined;
    if (opts.handle) {
      try {
        handle = await client.claimHandle(opts.handle);
      } catch (err) {
        handleError = `The account was created without a handle: ${describeError(err)}`;
      }
    }
    if (handle) await store.set(OWN_HANDLE, handle);
    await store.set('web/registered', '1');
    const session = new WebSession(client, await Messenger.open(client, store), store, handle, handleError);
    await client.connect();
    return session;
  }

  /** The device this browser already holds, or undefined when there is none (or it never finished registering). */
  static async resume(origin: string): Promise<WebSession | undefined> {
    if (!(await IdbStore.exists(DEVICE_DB))) return undefined;
    const store = await IdbStore.open(DEVICE_DB);
    if ((await store.get('web/registered')) !== '1') {
      store.close();
      return undefined;
    }
    const client = await UmbraClient.open({ serverUrl: origin, store });
    const session = new WebSession(client, await Messenger.open(client, store), store, await store.get(OWN_HANDLE), undefined);
    await session.restore();
    // The socket reconnects on its own; the page shows "connecting…" until it is up.
    void client.connect().catch(() => undefined);
    return session;
  }

  /** Logs out: closes the socket and deletes everything stored for this device in the browser. */
  async wipe(): Promise<void> {
    await this.client.close().catch(() => undefined);
    this.store.close();
    await IdbStore.wipe(DEVICE_DB);
  }

  get accountId(): string {
    return this.client.identity.accountIdText;
  }

  get deviceId(): number {
    return this.client.identity.device.deviceId;
  }

  get connected(): boolean {
    return this.client.connected;
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

  conversation(id: string): Conversation | undefined {
    return this.conversations.get(id);
  }

  /** Opens (or finds) the conversation with a handle ("@name" or "name") or an account id ("um1…"). */
  async startChat(peerText: string): Promise<Conversation> {
    const text = peerText.trim();
    if (text.startsWith('um1')) {
      const account = await this.client.getAccount(text);
      return this.open(account.accountId, account.handle ? `@${account.handle}` : undefined);
    }
    const parsed = parseHandle(text);
    if ('error' in parsed) throw new Error(parsed.error);
    const account = await this.client.getAccountByHandle(parsed.handle);
    if (account.accountId === this.accountId) throw new Error('That is your own handle.');
    return this.open(account.accountId, `@${parsed.handle}`);
  }

  /** Sends a text; the message shows at once as "sending", then "sent" once the server stored it. */
  async send(conv: string, text: string): Promise<void> {
    const c = this.open(conv);
    const pending: ChatMessage = { id: `pending-${crypto.randomUUID()}`, conv, outgoing: true, text, at: Date.now(), state: 'sending' };
    c.messages.push(pending);
    this.changed();
    try {
      await this.messenger.sendText(conv, text);
      pending.state = 'stored';
    } catch (err) {
      pending.state = 'failed';
      throw err;
    } finally {
      this.changed();
    }
  }

  markRead(conv: string): void {
    const c = this.conversations.get(conv);
    if (c && c.unread > 0) {
      c.unread = 0;
      this.changed();
    }
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  private open(id: string, label?: string): Conversation {
    let c = this.conversations.get(id);
    if (!c) {
      c = { id, label: label ?? shortId(id), unread: 0, messages: [] };
      this.conversations.set(id, c);
      this.changed();
    } else if (label && c.label !== label) {
      c.label = label;
      this.changed();
    }
    if (label) void this.store.set(LABEL(id), label).catch(() => undefined);
    return c;
  }

  /** Conversations and their text messages from the SDK's history (kept across reloads). */
  private async restore(): Promise<void> {
    const convs = new Set<string>();
    for (const key of await this.store.keys('history/')) convs.add(key.split('/')[1]!);
    for (const key of await this.store.keys('web/label/')) convs.add(key.slice('web/label/'.length));
    for (const conv of convs) {
      const c: Conversation = { id: conv, label: (await this.store.get(LABEL(conv))) ?? shortId(conv), unread: 0, messages: [] };
      for (const e of await this.messenger.history.list(conv)) {
        const m = toChatMessage(e);
        if (m) c.messages.push(m);
      }
      this.conversations.set(conv, c);
    }
    this.changed();
  }

  private received(m: ReceivedMessage): void {
    if (m.content.k !== 'text' || typeof m.content.text !== 'string' || m.content.gid) return;
    const conv = m.sync ? m.dest : m.from;
    if (!conv) return;
    const c = this.open(conv);
    if (c.messages.some((x) => x.id === m.content.id)) return;
    c.messages.push({ id: m.content.id, conv, outgoing: m.sync, text: m.content.text, at: m.serverTimestamp, ...(m.sync ? { state: 'stored' as const } : {}) });
    if (!m.sync) c.unread++;
    this.changed();
  }

  private changed(): void {
    this.version++;
    for (const l of this.listeners) l();
  }
}

function toChatMessage(e: HistoryEntry): ChatMessage | undefined {
  if (e.content.k !== 'text' || typeof e.content.text !== 'string' || e.content.gid) return undefined;
  return { id: e.id, conv: e.conv, outgoing: e.outgoing, text: e.content.text, at: e.serverTimestamp || e.content.ts, ...(e.outgoing ? { state: 'stored' as const } : {}) };
}

export function shortId(accountId: string): string {
  return accountId.length > 16 ? `${accountId.slice(0, 10)}…${accountId.slice(-4)}` : accountId;
}

import { Messenger, Receipts, UmbraApiError, UmbraClient, type KeyValueStore, type PowSolver } from '@umbra/sdk';
import type { Conversation } from './conversation.model';
import { ConversationStore } from './conversations.store';
import { FileService } from './files.service';
import { GroupService } from './groups.service';
import { IdbStore, StoredStateError } from './idb.store';
import { MessageService } from './messages.service';
import { VanishingService } from './vanishing.service';

export { shortId, type ChatMessage, type Conversation, type DeliveryState } from './conversation.model';

const HANDLE = /^[a-z0-9_]{3,32}$/;
/** The IndexedDB database holding this browser's device. */
export const DEVICE_DB = 'umbra-device';
/** The page's own entries in the SDK's store: the own handle, and that registration finished. */
const OWN_HANDLE = 'web/handle';
const REGISTERED = 'web/registered';

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

/** Records in the store that this device is registered (and its handle): a reload resumes it. */
export async function markRegistered(store: KeyValueStore, handle?: string): Promise<void> {
  if (handle) await store.set(OWN_HANDLE, handle);
  await store.set(REGISTERED, '1');
}

/**
 * This browser's Umbra device: the SDK's client, messenger and receipts over an encrypted IndexedDB
 * store, and the services the views use — conversations (1:1 and groups), message actions, groups,
 * vanishing timers.
 */
export class WebSession {
  readonly conversations: ConversationStore;
  readonly messages: MessageService;
  readonly groups: GroupService;
  readonly vanishing: VanishingService;
  readonly files: FileService;

  private constructor(
    readonly client: UmbraClient,
    readonly messenger: Messenger,
    readonly receipts: Receipts,
    private readonly store: IdbStore,
    readonly handle: string | undefined,
    /** Set when the account was created but the wanted handle could not be claimed. */
    readonly handleError: string | undefined,
  ) {
    this.conversations = new ConversationStore(messenger, receipts, store);
    this.messages = new MessageService(messenger, receipts, this.conversations);
    this.groups = new GroupService(messenger, this.conversations, (text) => this.resolvePeer(text));
    this.vanishing = new VanishingService(messenger, this.conversations);
    this.files = new FileService(messenger, store, this.conversations);
  }

  private static async over(client: UmbraClient, store: IdbStore, handle: string | undefined, handleError: string | undefined): Promise<WebSession> {
    const messenger = await Messenger.open(client, store);
    const session = new WebSession(client, messenger, await Receipts.open(messenger, store), store, handle, handleError);
    await session.conversations.start();
    await session.files.start();
    return session;
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
    await markRegistered(store, handle);
    const session = await WebSession.over(client, store, handle, handleError);
    await client.connect();
    return session;
  }

  /** The device this browser already holds, or undefined when there is none (or it never finished registering). */
  static async resume(origin: string): Promise<WebSession | undefined> {
    if (!(await IdbStore.exists(DEVICE_DB))) return undefined;
    const store = await IdbStore.open(DEVICE_DB);
    if ((await store.get(REGISTERED)) !== '1') {
      store.close();
      return undefined;
    }
    const client = await UmbraClient.open({ serverUrl: origin, store });
    const session = await WebSession.over(client, store, await store.get(OWN_HANDLE), undefined);
    // The socket reconnects on its own; the page shows "connecting…" until it is up.
    void client.connect().catch(() => undefined);
    return session;
  }

  /** Logs out: closes the socket and deletes everything stored for this device in the browser. */
  async wipe(): Promise<void> {
    this.conversations.stop();
    this.files.close();
    this.messenger.history.close();
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
    return this.conversations.revision;
  }

  subscribe(listener: () => void): () => void {
    return this.conversations.subscribe(listener);
  }

  list(): Conversation[] {
    return this.conversations.list();
  }

  conversation(id: string): Conversation | undefined {
    return this.conversations.get(id);
  }

  /** Opens (or finds) the conversation with a handle ("@name" or "name") or an account id ("um1…"). */
  async startChat(peerText: string): Promise<Conversation> {
    const peer = await this.resolvePeer(peerText);
    if (peer.id === this.accountId) throw new Error('That is your own account.');
    return this.conversations.open(peer.id, peer.label);
  }

  /** An account by "@handle", "handle" or "um1…" id, checked against the key-transparency log. */
  async resolvePeer(peerText: string): Promise<{ id: string; label?: string }> {
    const text = peerText.trim();
    if (text.startsWith('um1')) {
      const account = await this.client.getAccount(text);
      return { id: account.accountId, ...(account.handle ? { label: `@${account.handle}` } : {}) };
    }
    const parsed = parseHandle(text);
    if ('error' in parsed) throw new Error(parsed.error);
    const account = await this.client.getAccountByHandle(parsed.handle);
    return { id: account.accountId, label: `@${parsed.handle}` };
  }

  /** Sends a text to a 1:1 chat or a group; it shows at once as "sending", then "sent". */
  send(conv: string, text: string, replyTo?: string): Promise<void> {
    return this.messages.send(conv, text, replyTo);
  }

  markRead(conv: string): Promise<void> {
    return this.messages.markRead(conv);
  }

  async close(): Promise<void> {
    this.conversations.stop();
    await this.client.close();
  }
}

import { LocalState, STATE_KEYS, Umbra, UmbraApiError, webFiles, type AttachmentSource, type PowSolver } from '@umbra/sdk';
import { webCallMedia } from './call-media.service';
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
/** The page's own entry in the SDK's store: the account's handle, to show it. */
const OWN_HANDLE = 'web/handle';
/** What this page wrote once registration finished, before it used the SDK's front door (such a device still resumes). */
const LEGACY_REGISTERED = 'web/registered';

/** The SDK's front door as this page opens it: files are Blobs (webFiles()). */
export type WebUmbra = Umbra<Blob | AttachmentSource, undefined, Blob>;

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
  if (err instanceof StoredStateError) return `${capitalize(err.message)}. Nothing was deleted: reload to try again, or wipe this device to start again.`;
  if (err instanceof TypeError) return 'Cannot reach the server; check the connection.';
  return err instanceof Error ? err.message : String(err);
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** Notes the account's handle for display (a linked device learns it from the account). */
export async function rememberHandle(store: IdbStore, handle: string | undefined): Promise<void> {
  if (handle) await store.set(OWN_HANDLE, handle);
}

/** Opens (without connecting) the device this store holds, over the SDK's front door. */
export function openUmbra(origin: string, store: IdbStore): Promise<WebUmbra> {
  return Umbra.open({ serverUrl: origin, store, files: webFiles(), calls: webCallMedia.options, connect: false });
}

/**
 * This browser's Umbra device: the SDK's front door (`Umbra`) over an encrypted IndexedDB store,
 * and the services the views use — conversations (1:1 and groups), message actions, groups,
 * vanishing timers, files.
 */
export class WebSession {
  readonly conversations: ConversationStore;
  readonly messages: MessageService;
  readonly groups: GroupService;
  readonly vanishing: VanishingService;
  readonly files: FileService;

  private constructor(
    /** The SDK's front door: every call and event of this page goes through it. */
    readonly umbra: WebUmbra,
    private readonly store: IdbStore,
    readonly handle: string | undefined,
    /** Set when the account was created but the wanted handle could not be claimed. */
    readonly handleError: string | undefined,
  ) {
    this.conversations = new ConversationStore(umbra, store);
    this.messages = new MessageService(umbra, this.conversations);
    this.groups = new GroupService(umbra, this.conversations, (text) => this.resolvePeer(text));
    this.vanishing = new VanishingService(umbra, this.conversations);
    this.files = new FileService(umbra, this.conversations);
  }

  /** The session over an opened (not yet connected) Umbra: its services follow the events from before the first one. */
  static async over(umbra: WebUmbra, store: IdbStore, handle: string | undefined, handleError?: string): Promise<WebSession> {
    const session = new WebSession(umbra, store, handle, handleError);
    await session.conversations.start();
    await session.files.start();
    return session;
  }

  /** A new identity on this origin: proof of work (through `solvePow`), registration, prekeys, the handle, the socket. */
  static async createAccount(opts: { origin: string; handle?: string; solvePow: PowSolver }): Promise<WebSession> {
    // A half-made device (closed during registration) is replaced.
    await IdbStore.wipe(DEVICE_DB);
    const store = await IdbStore.open(DEVICE_DB);
    let umbra: WebUmbra;
    let handleError: string | undefined;
    try {
      umbra = await Umbra.create({ serverUrl: opts.origin, store, files: webFiles(), calls: webCallMedia.options, connect: false, solvePow: opts.solvePow, ...(opts.handle ? { handle: opts.handle } : {}) });
    } catch (err) {
      // Only the handle was refused when the account exists already: keep it, without a handle.
      if (!opts.handle || !(await registered(store))) throw err;
      umbra = await openUmbra(opts.origin, store);
      handleError = `The account was created without a handle: ${describeError(err)}`;
    }
    const handle = handleError ? undefined : opts.handle;
    await rememberHandle(store, handle);
    const session = await WebSession.over(umbra, store, handle, handleError);
    await umbra.connect();
    return session;
  }

  /** The device this browser already holds, or undefined when there is none (or it never finished registering). */
  static async resume(origin: string): Promise<WebSession | undefined> {
    if (!(await IdbStore.exists(DEVICE_DB))) return undefined;
    const store = await IdbStore.open(DEVICE_DB);
    let umbra: WebUmbra | undefined;
    try {
      if (!(await registered(store))) {
        store.close();
        return undefined;
      }
      umbra = await openUmbra(origin, store);
      const session = await WebSession.over(umbra, store, (await store.get(OWN_HANDLE)) ?? (await umbra.account.handle()));
      // The socket reconnects on its own; the page shows "connecting…" until it is up.
      void umbra.connect().catch(() => undefined);
      return session;
    } catch (err) {
      // Unreadable state is left exactly as it is (the person decides: retry, or wipe); only let go of it.
      await umbra?.close().catch(() => undefined);
      store.close();
      throw err;
    }
  }

  /** Logs out: closes the socket and deletes everything stored for this device in the browser. */
  async wipe(): Promise<void> {
    this.conversations.stop();
    this.files.close();
    await this.umbra.close().catch(() => undefined);
    this.store.close();
    await IdbStore.wipe(DEVICE_DB);
  }

  get accountId(): string {
    return this.umbra.account.id;
  }

  get deviceId(): number {
    return this.umbra.account.deviceId;
  }

  get connected(): boolean {
    return this.umbra.connected;
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
    if (!text.startsWith('um1')) {
      const parsed = parseHandle(text);
      if ('error' in parsed) throw new Error(parsed.error);
    }
    const account = await this.umbra.account.lookup(text);
    return { id: account.id, ...(account.handle ? { label: `@${account.handle}` } : {}) };
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
    this.files.close();
    await this.umbra.close();
  }
}

/** Registration (or linking) finished for the device this store holds. */
async function registered(store: IdbStore): Promise<boolean> {
  const state = new LocalState(store);
  if ((await state.get(STATE_KEYS.ready)) !== undefined) return true;
  if ((await store.get(LEGACY_REGISTERED)) !== '1') return false;
  // Registered by this page before it used the front door, which would otherwise register it again.
  await state.set(STATE_KEYS.ready, '1');
  return true;
}

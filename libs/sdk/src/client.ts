import { LIMITS, ROUTES, type AccountResponse, type BundlesResponse, type DeliveredEnvelope, type ExpiredEvent, type FetchResponse, type KeyCountsResponse } from '@umbra/protocol';
import type { RecalledEvent, RecallRequest, RecallResult, SendResult, TokenResponse, TypingEvent, TypingRequest, TypingResult } from '@umbra/protocol';
import { AccountDirectory, type VerifiedAccount } from './client/account.directory';
import { createClientHandlers, type MessageHandler } from './client/client.handlers';
import type { UmbraClientOptions } from './client/client.options';
import { DeviceSession, type PowSolver } from './client/device.session';
import { InboxReceiver, type ClientSocket } from './client/inbox.receiver';
import { OutboxQueue, type SendInput } from './client/outbox.queue';
import { PrekeyMaintainer } from './client/prekey.maintainer';
import { SeenWindow } from './client/seen.window';
import { SocketConnection } from './client/socket.connection';
import { Contacts } from './contacts';
import { HttpClient } from './http.client';
import type { LocalIdentity } from './identity';
import { KtClient, type KtAlert } from './kt/kt.client';
import { PrekeyManager } from './prekeys';
import { LocalState } from './state/local.state';

export type { VerifiedAccount } from './client/account.directory';
export type { MessageHandler } from './client/client.handlers';
export type { PowSolver } from './client/device.session';
export type { UmbraClientOptions } from './client/client.options';

const KT_MONITOR_INTERVAL_MS = 86_400_000;
const DEDUP_WINDOW = 10_000;
const SEND_TIMEOUT_MS = 15_000;

/**
 * The Umbra client: identity, registration (with proof of work), authentication, a socket that
 * reconnects with backoff, a persistent outbox, and at-least-once receipt with de-duplication.
 * Browser-safe: fetch, socket.io-client and a pluggable store. Each of these is a part in client/;
 * this class puts them together.
 */
export class UmbraClient {
  readonly http: HttpClient;
  /** Key transparency: verification of every device list and handle binding, and monitoring of our own. */
  readonly kt: KtClient;
  /** Handles pinned to accounts, identity changes behind them, safety-number verifications (§11). */
  readonly contacts: Contacts;
  private readonly handlers = createClientHandlers();
  private readonly now: () => number;
  private readonly session: DeviceSession;
  private readonly seen: SeenWindow;
  private readonly inbox: InboxReceiver;
  private readonly connection: SocketConnection;
  private readonly outbox: OutboxQueue;
  private readonly prekeyMaintainer: PrekeyMaintainer;
  private readonly accounts: AccountDirectory;

  private constructor(private readonly opts: UmbraClientOptions) {
    this.http = new HttpClient(opts.serverUrl.replace(/\/$/, ''), opts.fetch);
    this.now = opts.now ?? (() => Date.now());
    const state = new LocalState(opts.store);
    this.contacts = new Contacts(opts.store, this.now);
    this.kt = new KtClient({
      http: this.http,
      store: opts.store,
      now: opts.ktNow ?? (() => Date.now()),
      ...(opts.kt ? { trust: opts.kt } : {}),
      ...(opts.ktInclusionWaitMs !== undefined ? { inclusionWaitMs: opts.ktInclusionWaitMs } : {}),
      emit: (e) => {
        if (e.event === 'kt-alert') for (const h of this.handlers['kt-alert']) h(e.alert);
        else for (const h of this.handlers['kt-warning']) h(e.message);
      },
    });
    this.session = new DeviceSession(this.http, state, this.kt, opts.serverUrl, this.now);
    this.seen = new SeenWindow(state, opts.dedupWindow ?? DEDUP_WINDOW);
    const closed = () => this.connection.closed;
    this.inbox = new InboxReceiver(this.handlers, this.seen, () => this.connection.socket, closed);
    this.connection = new SocketConnection(
      this.http.baseUrl,
      this.session,
      this.handlers,
      this.inbox,
      {
        connected: () => {
          void this.outbox.flush();
          void this.maintainPrekeys().catch(() => undefined);
        },
        keysLow: () => this.prekeyMaintainer.refillSoon(),
        removed: () => void this.close(),
      },
      opts.sendTimeoutMs ?? SEND_TIMEOUT_MS,
    );
    this.outbox = new OutboxQueue(state, this.connection, this.now);
    this.prekeyMaintainer = new PrekeyMaintainer(this.session, new PrekeyManager(opts.store, () => this.identity, this.now), closed);
    this.accounts = new AccountDirectory(this.session, state, this.kt, this.contacts, this.now);
  }

  /** Opens a client over a store; the identity in the store, if any, is loaded. */
  static async open(opts: UmbraClientOptions): Promise<UmbraClient> {
    const client = new UmbraClient(opts);
    await client.session.load();
    await client.seen.load();
    return client;
  }

  get identity(): LocalIdentity {
    return this.session.identity;
  }

  get hasIdentity(): boolean {
    return this.session.hasIdentity;
  }

  get connected(): boolean {
    return this.connection.connected;
  }

  get origin(): string {
    return this.session.origin;
  }

  /** The socket, for tests that watch it (undefined before connect and after close). */
  private get socket(): ClientSocket | undefined {
    return this.connection.socket;
  }

  createIdentity(): Promise<LocalIdentity> {
    return this.session.createIdentity();
  }

  setIdentity(identity: LocalIdentity): Promise<void> {
    return this.session.setIdentity(identity);
  }

  /** Registers the account: solves the server's proof of work and proves possession of both keys. */
  register(opts: { solvePow?: PowSolver } = {}): Promise<TokenResponse> {
    return this.session.register(opts);
  }

  /** A fresh bearer token through the challenge/response of PROTOCOL.md §1. */
  authenticate(): Promise<string> {
    return this.session.authenticate();
  }

  /** A valid token, authenticating when there is none or it is about to expire. */
  getToken(): Promise<string> {
    return this.session.getToken();
  }

  /** Authenticated REST call. A rejected token is refreshed once. */
  api<T>(method: string, path: string, body?: unknown): Promise<T> {
    return this.session.api<T>(method, path, body);
  }

  /** An account and its device list, checked against the key-transparency log (KtVerificationError when it is not). */
  async getAccount(accountIdText: string): Promise<AccountResponse> {
    return (await this.accounts.verifiedAccount(accountIdText)).account;
  }

  /** An account by handle; the handle binding and the device list are checked against the key-transparency log. */
  async getAccountByHandle(handle: string): Promise<AccountResponse> {
    return (await this.accounts.verifiedAccountByHandle(handle)).account;
  }

  /** getAccount with the verified device list. */
  verifiedAccount(accountIdText: string): Promise<VerifiedAccount> {
    return this.accounts.verifiedAccount(accountIdText);
  }

  /** getAccountByHandle with the verified device list and handle claim. */
  verifiedAccountByHandle(handle: string): Promise<VerifiedAccount> {
    return this.accounts.verifiedAccountByHandle(handle);
  }

  /**
   * §12 monitoring: checks every leaf logged for this account's labels since the last check; alerts
   * (also emitted as `kt-alert`) for a device list this device did not publish or the handle bound
   * elsewhere. Only AIK-holding devices monitor; others resolve to [].
   */
  monitorKt(): Promise<KtAlert[]> {
    return this.accounts.monitorKt();
  }

  claimHandle(handle: string, claimVersion = this.now()): Promise<string> {
    return this.accounts.claimHandle(handle, claimVersion);
  }

  /** Releases this account's handle; this device stops monitoring it (another account may claim it now). */
  releaseHandle(): Promise<void> {
    return this.accounts.releaseHandle();
  }

  publishDeviceList(deviceList: Uint8Array, listVersion: number): Promise<{ listVersion: number; removedDeviceIds: number[] }> {
    return this.accounts.publishDeviceList(deviceList, listVersion);
  }

  /** REST fetch of a queue page, for clients without a socket. */
  fetchMessages(after?: string, limit?: number): Promise<FetchResponse> {
    const q = new URLSearchParams();
    if (after) q.set('after', after);
    if (limit) q.set('limit', String(limit));
    const qs = q.toString();
    return this.api('GET', `${ROUTES.fetchMessages.path}${qs ? `?${qs}` : ''}`);
  }

  /**
   * Recall before delivery: the server deletes the still-queued copies of this device's send with
   * this clientMessageId (base64url, as `send` answered it) held for any device of `accountIds`, the
   * accounts it went to (the peer or the group's members, and ours for our other devices; at most
   * LIMITS.MAX_RECALL_ACCOUNTS). Answers how many were deleted; copies already delivered and
   * acknowledged are out of reach (delete-for-everyone covers those).
   */
  recall(clientMessageId: string, accountIds: string[]): Promise<RecallResult> {
    return this.api('POST', ROUTES.recallMessage.path, { clientMessageId, accountIds } satisfies RecallRequest);
  }

  /**
   * Tells the connected devices of `to` that this device started or stopped typing, in group `gid`
   * when given (call it once per member; the server relays the id). Live only: when the socket is
   * not connected nothing is sent (`devices: 0`), and nothing is ever queued.
   */
  typing(to: string, state: TypingRequest['state'], gid?: string): Promise<TypingResult> {
    return this.connection.emitTyping({ to, state, ...(gid !== undefined ? { gid } : {}) });
  }

  /** This device's prekeys: generated locally, private halves in the store. */
  get prekeys(): PrekeyManager {
    return this.prekeyMaintainer.prekeys;
  }

  /**
   * Tops the server up to a full set of prekeys (SPK, last-resort KEM key, 100 one-time keys of each
   * kind), replacing the SPK and last-resort KEM key when they are 7 days old (PROTOCOL.md §2).
   */
  refillPrekeys(): Promise<KeyCountsResponse> {
    return this.prekeyMaintainer.refill();
  }

  /**
   * Rotates the signed prekey and last-resort KEM key when due and deletes replaced ones older than
   * 30 days. Runs on every connect and every `prekeyCheckIntervalMs` while connected, once this
   * device has published prekeys (refillPrekeys); cheap when nothing is due (no server call).
   */
  maintainPrekeys(): Promise<void> {
    return this.prekeyMaintainer.maintain();
  }

  /** Prekey bundles of an account's devices (each one-time key is handed out once). */
  fetchBundles(accountIdText: string, deviceId?: number): Promise<BundlesResponse> {
    return this.api('GET', `/v1/keys/${encodeURIComponent(accountIdText)}${deviceId ? `?deviceId=${deviceId}` : ''}`);
  }

  on(event: 'message', handler: MessageHandler): void;
  on(event: 'queueEmpty', handler: () => void): void;
  on(event: 'devicesChanged', handler: (listVersion: number) => void): void;
  on(event: 'revoked', handler: (reason: string) => void): void;
  /** The socket connected (true) or dropped (false); it reconnects by itself until close(). */
  on(event: 'connection', handler: (connected: boolean) => void): void;
  /** The server deleted envelopes of this device because their messages vanished. */
  on(event: 'expired', handler: (ev: ExpiredEvent) => void | Promise<void>): void;
  /** The server deleted envelopes pushed to this device because their sender recalled them: drop them. */
  on(event: 'recalled', handler: (ev: RecalledEvent) => void | Promise<void>): void;
  /** A device of another account (or of this one) is typing to this account, in group `ev.gid` when set; live only. */
  on(event: 'typing', handler: (ev: TypingEvent) => void): void;
  /** A message handler threw: the envelope was not acknowledged and will be delivered again. */
  on(event: 'receiveError', handler: (err: unknown, envelope: DeliveredEnvelope) => void): void;
  /** The key-transparency log shows something about this account its devices did not do (§12 monitoring). */
  on(event: 'kt-alert', handler: (alert: KtAlert) => void): void;
  /** Key transparency runs on trust-on-first-use pins (no `kt` option was given). */
  on(event: 'kt-warning', handler: (message: string) => void): void;
  on(event: keyof UmbraClient['handlers'], handler: (...args: never[]) => unknown): void {
    (this.handlers[event] as Set<unknown>).add(handler);
  }

  /** Connects the socket (reconnecting with backoff until close()); resolves on the first connection. */
  async connect(): Promise<void> {
    if (this.connection.socket) return this.connection.waitConnected();
    await this.getToken();
    const socket = this.connection.open();
    this.accounts.startMonitoring(this.opts.ktMonitorIntervalMs ?? KT_MONITOR_INTERVAL_MS);
    this.prekeyMaintainer.start(this.opts.prekeyCheckIntervalMs ?? LIMITS.SIGNED_PREKEY_CHECK_INTERVAL_MS, () => socket.connected);
    await this.connection.waitConnected();
  }

  /**
   * Sends one message. It goes to the persistent outbox first and is retried (same clientMessageId,
   * so idempotent) until the server says "stored" or rejects it for good.
   */
  send(input: SendInput): Promise<SendResult> {
    return this.outbox.send(input);
  }

  /** Read report (PROTOCOL.md §8): these envelopes were displayed; read-mode copies still stored start their timer. */
  async markRead(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    if (await this.connection.emitRead(ids)) return;
    await this.api('POST', ROUTES.readMessages.path, { ids });
  }

  /** Waits for received envelopes to be handled and acknowledged. */
  settle(): Promise<void> {
    return this.inbox.settle();
  }

  async close(): Promise<void> {
    if (this.connection.closed) return;
    await this.settle();
    this.connection.markClosed();
    const prekeysStopped = this.prekeyMaintainer.stop();
    await this.accounts.stopMonitoring();
    this.inbox.stopRedrain();
    await prekeysStopped;
    await this.seen.flush();
    this.connection.disconnect();
  }
}

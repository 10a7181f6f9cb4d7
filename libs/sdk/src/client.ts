import { io, type Socket } from 'socket.io-client';
import { b64uDecode, b64uEncode, bytesEqual, canonicalHandle, createAuthResponse, createSignedHandleClaim, decodeAccountId, randomBytes, verifySignedDeviceList, type SignedDeviceList, type SignedHandleClaim } from '@umbra/crypto';
import {
  ClientEvent,
  ServerEvent,
  WS_PATH,
  ROUTES,
  LIMITS,
  solvePow,
  type AccountResponse,
  type ChallengeResponse,
  type ClientToServerEvents,
  type DeliveredEnvelope,
  type ErrorCode,
  type ExpiredEvent,
  type FetchResponse,
  type KeyCountsResponse,
  type BundlesResponse,
  type PowChallengeResponse,
  type RecalledEvent,
  type RecallRequest,
  type RecallResult,
  type SendRequest,
  type SendResult,
  type ServerToClientEvents,
  type TokenResponse,
  type TypingEvent,
  type TypingRequest,
  type TypingResult,
  type WsAck,
} from '@umbra/protocol';
import { UmbraApiError } from './errors';
import { HttpClient, type FetchFn } from './http.client';
import { createIdentity, deserializeIdentity, serializeIdentity, type LocalIdentity } from './identity';
import type { KeyValueStore } from './store';
import { PrekeyManager } from './prekeys';
import { Mutex } from './mutex';
import { KtClient, type KtAlert } from './kt/kt.client';
import { Contacts } from './contacts';
import { KtVerificationError } from './kt/kt.errors';
import type { KtTrustConfig } from './kt/kt.verifier';

export interface UmbraClientOptions {
  /** The public origin, e.g. http://127.0.0.1:8080 */
  serverUrl: string;
  store: KeyValueStore;
  fetch?: FetchFn;
  now?: () => number;
  /** Per-attempt timeout of a socket send. */
  sendTimeoutMs?: number;
  /** Remembered (sender device, clientMessageId) pairs for de-duplication. */
  dedupWindow?: number;
  /** How often a connected client checks whether its signed prekey is due for rotation (PROTOCOL.md §2). */
  prekeyCheckIntervalMs?: number;
  /**
   * Key-transparency pins (PROTOCOL.md §12): every device list and handle binding is checked against
   * this log and witness quorum. Without it the server's GET /v1/kt/config is pinned on first use
   * and a `kt-warning` event says so. There is no way to turn the checks off.
   */
  kt?: KtTrustConfig;
  /** How long a lookup waits for a just-published statement to be logged before failing not-in-log (default 15 s). */
  ktInclusionWaitMs?: number;
  /** How often a connected AIK-holding device monitors its own labels (§12: at least daily; default 24 h). */
  ktMonitorIntervalMs?: number;
  /**
   * The clock STH ages are measured with (§12 check 2). Tree heads carry the log's wall-clock time,
   * so this defaults to Date.now, not to `now` (which tests move ahead to simulate days passing on
   * the device alone).
   */
  ktNow?: () => number;
}

/** An account whose device list (and, looked up by handle, whose handle binding) the KT log confirmed. */
export interface VerifiedAccount {
  account: AccountResponse;
  deviceList: SignedDeviceList;
  handleClaim?: SignedHandleClaim;
}

/**
 * Handles one received envelope. Resolving means its result is durably stored: the envelope is then
 * acknowledged (the server deletes it). Throwing leaves it queued; it is delivered again later.
 */
export type MessageHandler = (envelope: DeliveredEnvelope) => void | Promise<void>;

interface OutboxEntry {
  request: SendRequest;
  createdAt: number;
}

type SendInput = Omit<SendRequest, 'clientMessageId'> & { clientMessageId?: string };

/** Finds a registration proof of work (solvePow's contract); a browser runs it in a Web Worker. */
export type PowSolver = (challenge: Uint8Array, accountId: Uint8Array, difficulty: number) => Promise<Uint8Array>;

const KEY_IDENTITY = 'identity';
const KEY_TOKEN = 'token';
const KEY_SEEN = 'seen';
const KEY_OWN_HANDLE = 'kt/own-handle';
const KT_MONITOR_INTERVAL_MS = 86_400_000;
const OUTBOX = 'outbox/';
const PERMANENT_SEND_ERRORS = new Set<ErrorCode>(['DEVICE_MISMATCH', 'ACCOUNT_NOT_FOUND', 'ALREADY_EXPIRED']);
/** After an envelope could not be stored, the socket reconnects (so the server drains it again) after this, doubling up to the max. */
const REDRAIN_DELAY_MS = 1000;
const REDRAIN_DELAY_MAX_MS = 60_000;

/**
 * The Umbra client: identity, registration (with proof of work), authentication, a socket that
 * reconnects with backoff, a persistent outbox, and at-least-once receipt with de-duplication.
 * Browser-safe: fetch, socket.io-client and a pluggable store.
 */
export class UmbraClient {
  readonly http: HttpClient;
  private identityValue: LocalIdentity | undefined;
  private token: { token: string; expiresAt: number } | undefined;
  private socket: Socket<ServerToClientEvents, ClientToServerEvents> | undefined;
  private readonly handlers = {
    message: new Set<MessageHandler>(),
    queueEmpty: new Set<() => void>(),
    devicesChanged: new Set<(v: number) => void>(),
    revoked: new Set<(reason: string) => void>(),
    connection: new Set<(connected: boolean) => void>(),
    expired: new Set<(ev: ExpiredEvent) => void | Promise<void>>(),
    recalled: new Set<(ev: RecalledEvent) => void | Promise<void>>(),
    typing: new Set<(ev: TypingEvent) => void>(),
    receiveError: new Set<(err: unknown, envelope: DeliveredEnvelope) => void>(),
    'kt-alert': new Set<(alert: KtAlert) => void>(),
    'kt-warning': new Set<(message: string) => void>(),
  };
  /** Key transparency: verification of every device list and handle binding, and monitoring of our own. */
  readonly kt: KtClient;
  /** Handles pinned to accounts, identity changes behind them, safety-number verifications (§11). */
  readonly contacts: Contacts;
  private ktMonitorTimer: ReturnType<typeof setInterval> | undefined;
  private monitoring: Promise<KtAlert[]> | undefined;
  private readonly seen: string[] = [];
  private readonly seenSet = new Set<string>();
  private inbox: Promise<void> = Promise.resolve();
  private ackBuffer: string[] = [];
  private ackTimer: ReturnType<typeof setTimeout> | undefined;
  private seenTimer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  private prekeyManager: PrekeyManager | undefined;
  private refilling: Promise<unknown> | undefined;
  private readonly prekeyLock = new Mutex();
  private prekeyTimer: ReturnType<typeof setInterval> | undefined;
  private maintaining: Promise<void> | undefined;
  private redrainTimer: ReturnType<typeof setTimeout> | undefined;
  private redrainDelay = REDRAIN_DELAY_MS;
  private revoked = false;
  private connectedWaiters: (() => void)[] = [];
  private readonly now: () => number;

  private constructor(private readonly opts: UmbraClientOptions) {
    this.http = new HttpClient(opts.serverUrl.replace(/\/$/, ''), opts.fetch);
    this.now = opts.now ?? (() => Date.now());
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
  }

  /** Opens a client over a store; the identity in the store, if any, is loaded. */
  static async open(opts: UmbraClientOptions): Promise<UmbraClient> {
    const client = new UmbraClient(opts);
    const stored = await opts.store.get(KEY_IDENTITY);
    if (stored) client.identityValue = deserializeIdentity(stored);
    const token = await opts.store.get(KEY_TOKEN);
    if (token) client.token = JSON.parse(token) as { token: string; expiresAt: number };
    const seen = await opts.store.get(KEY_SEEN);
    if (seen) for (const k of JSON.parse(seen) as string[]) client.remember(k);
    return client;
  }

  get identity(): LocalIdentity {
    if (!this.identityValue) throw new Error('no identity: call createIdentity() first');
    return this.identityValue;
  }

  get hasIdentity(): boolean {
    return this.identityValue !== undefined;
  }

  get connected(): boolean {
    return this.socket?.connected ?? false;
  }

  get origin(): string {
    return new URL(this.opts.serverUrl).origin;
  }

  async createIdentity(): Promise<LocalIdentity> {
    if (this.identityValue) throw new Error('this store already holds an identity');
    this.identityValue = createIdentity(this.now());
    await this.opts.store.set(KEY_IDENTITY, serializeIdentity(this.identityValue));
    return this.identityValue;
  }

  async setIdentity(identity: LocalIdentity): Promise<void> {
    this.identityValue = identity;
    await this.opts.store.set(KEY_IDENTITY, serializeIdentity(identity));
  }

  /** Registers the account: solves the server's proof of work and proves possession of both keys. */
  async register(opts: { solvePow?: PowSolver } = {}): Promise<TokenResponse> {
    const id = this.identity;
    const pow = await this.http.request<PowChallengeResponse>('GET', ROUTES.powChallenge.path);
    const solution = await (opts.solvePow ?? solvePow)(b64uDecode(pow.challenge), id.accountId, pow.difficulty);
    const authResponse = await this.signAuthResponse();
    const res = await this.http.request<TokenResponse>('POST', ROUTES.register.path, {
      body: { deviceList: b64uEncode(id.deviceList), authResponse, pow: { challenge: pow.challenge, solution: b64uEncode(solution) } },
    });
    await this.saveToken(res);
    await this.kt.notePublished(id.deviceList, id.listVersion);
    // Trust on first use happens at the first contact (a kt-warning now, not in the middle of a later
    // command); when it fails here, the first lookup pins instead, and fails loudly if it cannot.
    await this.kt.pins().catch(() => undefined);
    return res;
  }

  /** A fresh bearer token through the challenge/response of PROTOCOL.md §1. */
  async authenticate(): Promise<string> {
    const authResponse = await this.signAuthResponse();
    const res = await this.http.request<TokenResponse>('POST', ROUTES.authToken.path, { body: { authResponse } });
    await this.saveToken(res);
    return res.token;
  }

  /** A valid token, authenticating when there is none or it is about to expire. */
  async getToken(): Promise<string> {
    if (this.token && this.token.expiresAt - 60_000 > this.now()) return this.token.token;
    return this.authenticate();
  }

  private async signAuthResponse(): Promise<string> {
    const id = this.identity;
    const challenge = await this.http.request<ChallengeResponse>('GET', ROUTES.authChallenge.path);
    const bytes = createAuthResponse(
      { origin: this.origin, accountId: id.accountId, deviceId: id.device.deviceId, nonce: b64uDecode(challenge.nonce), clientTime: this.now() },
      id.device.dikSk,
    );
    return b64uEncode(bytes);
  }

  private async saveToken(res: TokenResponse): Promise<void> {
    this.token = { token: res.token, expiresAt: res.expiresAt };
    await this.opts.store.set(KEY_TOKEN, JSON.stringify(this.token));
  }

  /** Authenticated REST call. A rejected token is refreshed once. */
  async api<T>(method: string, path: string, body?: unknown): Promise<T> {
    try {
      return await this.http.request<T>(method, path, { body, token: await this.getToken() });
    } catch (err) {
      if (err instanceof UmbraApiError && (err.code === 'TOKEN_INVALID' || err.code === 'TOKEN_EXPIRED')) {
        this.token = undefined;
        return this.http.request<T>(method, path, { body, token: await this.authenticate() });
      }
      throw err;
    }
  }

  /** An account and its device list, checked against the key-transparency log (KtVerificationError when it is not). */
  async getAccount(accountIdText: string): Promise<AccountResponse> {
    return (await this.verifiedAccount(accountIdText)).account;
  }

  /** An account by handle; the handle binding and the device list are checked against the key-transparency log. */
  async getAccountByHandle(handle: string): Promise<AccountResponse> {
    return (await this.verifiedAccountByHandle(handle)).account;
  }

  /** getAccount with the verified device list. */
  async verifiedAccount(accountIdText: string): Promise<VerifiedAccount> {
    const account = await this.api<AccountResponse>('GET', `/v1/accounts/${encodeURIComponent(accountIdText)}`);
    return { account, deviceList: await this.verifyServedList(account, decodeAccountId(accountIdText)) };
  }

  /** getAccountByHandle with the verified device list and handle claim. */
  async verifiedAccountByHandle(handle: string): Promise<VerifiedAccount> {
    const account = await this.api<AccountResponse>('GET', `/v1/accounts/by-handle/${encodeURIComponent(handle)}`);
    const deviceList = await this.verifyServedList(account, decodeAccountId(account.accountId));
    const canonical = canonicalHandle(handle);
    const handleClaim = await this.kt.verifyHandle(canonical, deviceList.aik, account.handleClaim ? b64uDecode(account.handleClaim) : undefined);
    if (account.accountId !== this.identityValue?.accountIdText) await this.contacts.noteHandle(canonical, account.accountId);
    return { account, deviceList, handleClaim };
  }

  private async verifyServedList(account: AccountResponse, accountId: Uint8Array): Promise<SignedDeviceList> {
    const list = verifySignedDeviceList(b64uDecode(account.deviceList));
    if (!bytesEqual(list.accountId, accountId)) throw new KtVerificationError('wrong-account', 'the server served the device list of another account', { served: account.deviceList });
    return this.kt.verifyDeviceList(accountId, list);
  }

  /**
   * §12 monitoring: checks every leaf logged for this account's labels since the last check; alerts
   * (also emitted as `kt-alert`) for a device list this device did not publish or the handle bound
   * elsewhere. Only AIK-holding devices monitor; others resolve to [].
   */
  monitorKt(): Promise<KtAlert[]> {
    this.monitoring ??= (async () => {
      const id = this.identity;
      if (!id.aikSk) return [];
      const handle = await this.opts.store.get(KEY_OWN_HANDLE);
      return this.kt.monitor({ accountId: id.accountId, aik: id.aik, listVersion: id.listVersion, deviceList: id.deviceList, handle: handle ?? null });
    })().finally(() => (this.monitoring = undefined));
    return this.monitoring;
  }

  async claimHandle(handle: string, claimVersion = this.now()): Promise<string> {
    const id = this.identity;
    if (!id.aikSk) throw new Error('only a device holding the account key can claim a handle');
    const claim = createSignedHandleClaim({ handle, accountId: id.accountId, claimVersion, issuedAt: this.now() }, id.aikSk);
    const res = await this.api<{ handle: string }>('PUT', ROUTES.claimHandle.path, { claim: b64uEncode(claim) });
    await this.opts.store.set(KEY_OWN_HANDLE, res.handle);
    return res.handle;
  }

  /** Releases this account's handle; this device stops monitoring it (another account may claim it now). */
  async releaseHandle(): Promise<void> {
    try {
      await this.api('DELETE', ROUTES.releaseHandle.path);
    } finally {
      await this.opts.store.delete(KEY_OWN_HANDLE);
    }
  }

  async publishDeviceList(deviceList: Uint8Array, listVersion: number): Promise<{ listVersion: number; removedDeviceIds: number[] }> {
    const res = await this.api<{ listVersion: number; removedDeviceIds: number[] }>('PUT', ROUTES.updateDevices.path, { deviceList: b64uEncode(deviceList) });
    await this.setIdentity({ ...this.identity, deviceList, listVersion });
    await this.kt.notePublished(deviceList, listVersion);
    return res;
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
  async typing(to: string, state: TypingRequest['state'], gid?: string): Promise<TypingResult> {
    const socket = this.socket;
    if (!socket?.connected) return { devices: 0 };
    const req: TypingRequest = { to, state, ...(gid !== undefined ? { gid } : {}) };
    const res = await new Promise<WsAck<TypingResult>>((resolve) =>
      socket.timeout(5000).emit(ClientEvent.Typing, req, (err: Error | null, ack: WsAck<TypingResult>) =>
        resolve(err ? { ok: false, error: { code: 'UNAVAILABLE', message: 'no answer to typing' } } : ack),
      ),
    );
    if (!res.ok) throw new UmbraApiError(res.error.code === 'UNAVAILABLE' ? 0 : 400, res.error.code, res.error.message, res.error.details);
    return res.data;
  }

  /** This device's prekeys: generated locally, private halves in the store. */
  get prekeys(): PrekeyManager {
    this.prekeyManager ??= new PrekeyManager(this.opts.store, () => this.identity, this.now);
    return this.prekeyManager;
  }

  /**
   * Tops the server up to a full set of prekeys (SPK, last-resort KEM key, 100 one-time keys of each
   * kind), replacing the SPK and last-resort KEM key when they are 7 days old (PROTOCOL.md §2).
   */
  refillPrekeys(): Promise<KeyCountsResponse> {
    return this.prekeyLock.run(async () => {
      const counts = await this.api<KeyCountsResponse>('GET', ROUTES.keyCounts.path);
      const upload = await this.prekeys.buildUpload(counts);
      if (Object.keys(upload).length > 0) await this.api('PUT', ROUTES.uploadKeys.path, upload);
      await this.prekeys.markUploaded();
      return this.api<KeyCountsResponse>('GET', ROUTES.keyCounts.path);
    });
  }

  /**
   * Rotates the signed prekey and last-resort KEM key when due and deletes replaced ones older than
   * 30 days. Runs on every connect and every `prekeyCheckIntervalMs` while connected, once this
   * device has published prekeys (refillPrekeys); cheap when nothing is due (no server call).
   */
  maintainPrekeys(): Promise<void> {
    // One check at a time: the timer must not queue up checks behind a slow one.
    this.maintaining ??= (async () => {
      if (this.closed || !(await this.prekeys.published())) return;
      if (await this.prekeys.rotationDue()) await this.refillPrekeys();
      else await this.prekeyLock.run(() => this.prekeys.prune());
    })().finally(() => (this.maintaining = undefined));
    return this.maintaining;
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
    if (this.socket) return this.waitConnected();
    await this.getToken();
    const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io(this.http.baseUrl, {
      path: WS_PATH,
      transports: ['websocket'],
      auth: (cb) => cb({ token: this.token?.token }),
      reconnection: true,
      reconnectionDelay: 250,
      reconnectionDelayMax: 5000,
      randomizationFactor: 0.5,
    });
    this.socket = socket;
    socket.on('connect', () => {
      const waiters = this.connectedWaiters;
      this.connectedWaiters = [];
      for (const w of waiters) w();
      for (const h of this.handlers.connection) h(true);
      void this.flushOutbox();
      void this.maintainPrekeys().catch(() => undefined);
    });
    // §12: an AIK holder checks its own labels on start and at least daily (network failures wait for the next round).
    void this.monitorKt().catch(() => undefined);
    this.ktMonitorTimer = setInterval(() => void this.monitorKt().catch(() => undefined), this.opts.ktMonitorIntervalMs ?? KT_MONITOR_INTERVAL_MS);
    this.ktMonitorTimer.unref?.();
    this.prekeyTimer = setInterval(() => {
      if (socket.connected) void this.maintainPrekeys().catch(() => undefined);
    }, this.opts.prekeyCheckIntervalMs ?? LIMITS.SIGNED_PREKEY_CHECK_INTERVAL_MS);
    this.prekeyTimer.unref?.();
    socket.on('connect_error', (err: Error & { data?: { error?: { code?: string } } }) => {
      const code = err.data?.error?.code ?? err.message;
      if (code === 'TOKEN_INVALID' || code === 'TOKEN_EXPIRED' || code === 'UNAUTHENTICATED') {
        this.token = undefined;
        this.authenticate().then(
          () => !this.closed && socket.connect(),
          () => setTimeout(() => !this.closed && socket.connect(), 1000),
        );
      }
    });
    socket.on('disconnect', (reason) => {
      for (const h of this.handlers.connection) h(false);
      // The server closed this socket on purpose (shutdown, replaced); socket.io leaves reconnecting to us.
      if (reason === 'io server disconnect' && !this.closed && !this.revoked) {
        setTimeout(() => !this.closed && socket.connect(), 200 + Math.random() * 800);
      }
    });
    socket.on(ServerEvent.Messages, ({ messages }) => {
      this.inbox = this.inbox.then(() => this.receive(messages));
    });
    socket.on(ServerEvent.QueueEmpty, () => {
      this.inbox = this.inbox.then(() => {
        for (const h of this.handlers.queueEmpty) h();
      });
    });
    socket.on(ServerEvent.KeysLow, () => {
      // Refill on our own; one refill at a time.
      this.refilling ??= this.refillPrekeys()
        .catch(() => undefined)
        .finally(() => (this.refilling = undefined));
    });
    socket.on(ServerEvent.Expired, (ev) => {
      this.inbox = this.inbox.then(async () => {
        for (const h of this.handlers.expired) await Promise.resolve(h(ev)).catch(() => undefined);
      });
    });
    socket.on(ServerEvent.Recalled, (ev) => {
      this.inbox = this.inbox.then(async () => {
        for (const h of this.handlers.recalled) await Promise.resolve(h(ev)).catch(() => undefined);
      });
    });
    socket.on(ServerEvent.Typing, (ev) => {
      for (const h of this.handlers.typing) h(ev);
    });
    socket.on(ServerEvent.DevicesChanged, ({ listVersion }) => {
      for (const h of this.handlers.devicesChanged) h(listVersion);
    });
    socket.on(ServerEvent.Revoked, ({ reason }) => {
      this.revoked = reason === 'device_removed';
      for (const h of this.handlers.revoked) h(reason);
      if (reason === 'device_removed') void this.close();
    });
    await this.waitConnected();
  }

  private waitConnected(): Promise<void> {
    if (this.socket?.connected) return Promise.resolve();
    if (this.closed) return Promise.reject(new UmbraApiError(0, 'UNAVAILABLE', 'client closed'));
    return new Promise((resolve) => this.connectedWaiters.push(resolve));
  }

  /**
   * Sends one message. It goes to the persistent outbox first and is retried (same clientMessageId,
   * so idempotent) until the server says "stored" or rejects it for good.
   */
  async send(input: SendInput): Promise<SendResult> {
    const request: SendRequest = { ...input, clientMessageId: input.clientMessageId ?? b64uEncode(randomBytes(16)) };
    const entry: OutboxEntry = { request, createdAt: this.now() };
    await this.opts.store.set(OUTBOX + request.clientMessageId, JSON.stringify(entry));
    return this.deliverEntry(entry);
  }

  /** Entries left by an earlier run are retried on every (re)connect; vanished ones are dropped. */
  private async flushOutbox(): Promise<void> {
    for (const key of await this.opts.store.keys(OUTBOX)) {
      const raw = await this.opts.store.get(key);
      if (!raw || this.inFlight.has(key)) continue;
      const entry = JSON.parse(raw) as OutboxEntry;
      if (entry.request.expiresAt && entry.request.expiresAt <= this.now()) {
        await this.opts.store.delete(key);
        continue;
      }
      this.deliverEntry(entry).catch(() => undefined);
    }
  }

  /** Read report (PROTOCOL.md §8): these envelopes were displayed; read-mode copies still stored start their timer. */
  async markRead(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    const socket = this.socket;
    if (socket?.connected) {
      await new Promise<void>((resolve) => socket.timeout(5000).emit(ClientEvent.Read, { ids }, () => resolve()));
      return;
    }
    await this.api('POST', ROUTES.readMessages.path, { ids });
  }

  private readonly inFlight = new Map<string, Promise<SendResult>>();

  private deliverEntry(entry: OutboxEntry): Promise<SendResult> {
    const key = OUTBOX + entry.request.clientMessageId;
    const existing = this.inFlight.get(key);
    if (existing) return existing;
    const attempt = async (): Promise<SendResult> => {
      let delay = 100;
      for (;;) {
        if (this.closed) throw new UmbraApiError(0, 'UNAVAILABLE', 'client closed; the message stays in the outbox');
        try {
          await this.waitConnected();
          const result = await this.emitSend(entry.request);
          await this.opts.store.delete(key);
          return result;
        } catch (err) {
          const e = err instanceof UmbraApiError ? err : new UmbraApiError(0, 'UNAVAILABLE', String(err));
          if (!e.retryable || PERMANENT_SEND_ERRORS.has(e.code)) {
            await this.opts.store.delete(key);
            throw e;
          }
          await new Promise((r) => setTimeout(r, delay * (0.5 + Math.random())));
          delay = Math.min(delay * 2, 5000);
        }
      }
    };
    const p = attempt().finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, p);
    return p;
  }

  private emitSend(request: SendRequest): Promise<SendResult> {
    const socket = this.socket;
    if (!socket) return Promise.reject(new UmbraApiError(0, 'UNAVAILABLE', 'not connected'));
    return new Promise((resolve, reject) => {
      socket.timeout(this.opts.sendTimeoutMs ?? 15_000).emit(ClientEvent.Send, request, (err: Error | null, res: WsAck<SendResult>) => {
        if (err) return reject(new UmbraApiError(0, 'UNAVAILABLE', 'no answer from the server'));
        if (res.ok) resolve(res.data);
        else reject(new UmbraApiError(res.error.code === 'INTERNAL' ? 500 : 400, res.error.code, res.error.message, res.error.details));
      });
    });
  }

  private remember(key: string): void {
    if (this.seenSet.has(key)) return;
    this.seenSet.add(key);
    this.seen.push(key);
    const max = this.opts.dedupWindow ?? 10_000;
    while (this.seen.length > max) this.seenSet.delete(this.seen.shift()!);
  }

  /**
   * Hands each envelope to the message handlers and acks it only when all of them resolved, i.e.
   * its result is stored. One that a handler could not store stays queued, and the socket
   * reconnects after a backoff so the server drains it again; the others are not held up.
   */
  private async receive(messages: DeliveredEnvelope[]): Promise<void> {
    let failed = false;
    for (const env of messages) {
      const key = `${env.senderAccountId ?? '-'}:${env.senderDeviceId ?? 0}:${env.clientMessageId}`;
      if (!this.seenSet.has(key)) {
        try {
          for (const h of this.handlers.message) await h(env);
        } catch (err) {
          failed = true;
          for (const h of this.handlers.receiveError) h(err, env);
          continue;
        }
        this.remember(key);
      }
      this.queueAck(env.id);
    }
    this.persistSeenSoon();
    if (failed) this.scheduleRedrain();
    else this.redrainDelay = REDRAIN_DELAY_MS;
  }

  private scheduleRedrain(): void {
    if (this.redrainTimer || this.closed) return;
    const delay = this.redrainDelay;
    this.redrainDelay = Math.min(delay * 2, REDRAIN_DELAY_MAX_MS);
    this.redrainTimer = setTimeout(() => {
      this.redrainTimer = undefined;
      const socket = this.socket;
      if (this.closed || !socket?.connected) return;
      this.inbox = this.inbox.then(() => {
        this.flushAcks();
        socket.disconnect();
        if (!this.closed) socket.connect();
      });
    }, delay * (0.5 + Math.random()));
  }

  private persistSeenSoon(): void {
    if (this.seenTimer) return;
    this.seenTimer = setTimeout(() => {
      this.seenTimer = undefined;
      // Only a hint (the Messenger's de-duplication is stored with each result); retried with the next batch.
      this.opts.store.set(KEY_SEEN, JSON.stringify(this.seen)).catch(() => undefined);
    }, 50);
  }

  private queueAck(id: string): void {
    this.ackBuffer.push(id);
    if (this.ackBuffer.length >= 200) this.flushAcks();
    else if (!this.ackTimer) this.ackTimer = setTimeout(() => this.flushAcks(), 5);
  }

  private flushAcks(): void {
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    const ids = this.ackBuffer;
    this.ackBuffer = [];
    if (ids.length > 0 && this.socket?.connected) this.socket.emit(ClientEvent.Ack, { ids });
  }

  /** Waits for received envelopes to be handled and acknowledged. */
  async settle(): Promise<void> {
    await this.inbox;
    this.flushAcks();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.settle();
    this.closed = true;
    if (this.prekeyTimer) clearInterval(this.prekeyTimer);
    if (this.ktMonitorTimer) clearInterval(this.ktMonitorTimer);
    await this.monitoring?.catch(() => undefined);
    if (this.redrainTimer) clearTimeout(this.redrainTimer);
    this.redrainTimer = undefined;
    await this.maintaining?.catch(() => undefined);
    if (this.seenTimer) {
      clearTimeout(this.seenTimer);
      this.seenTimer = undefined;
      await this.opts.store.set(KEY_SEEN, JSON.stringify(this.seen));
    }
    this.socket?.disconnect();
    this.socket = undefined;
    for (const w of this.connectedWaiters) w();
    this.connectedWaiters = [];
  }
}

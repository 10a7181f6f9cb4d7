import type { ExpiredMessageRef } from '@umbra/protocol';
import { CallSignalIds } from '../calls/call-log';
import { UmbraClient, type PowSolver, type UmbraClientOptions } from '../client';
import { UmbraApiError } from '../errors';
import { linkThisDevice, type LinkThisDeviceOptions } from '../linking';
import { Messenger } from '../messenger';
import { Receipts } from '../receipts';
import type { KeyValueStore } from '../store';
import { AccountPart, parseHandle } from './account.part';
import { CallsPart, forwardExpiryReceipts, type CallsFrontDoorOptions } from './calls.part';
import { ContactsPart } from './contacts.part';
import { DevicesPart } from './devices.part';
import { FilesPart } from './files.part';
import type { FileTransport } from './files.transport';
import { GroupsPart } from './groups.part';
import { LocalState } from '../state/local.state';
import { STATE_KEYS } from '../state/state.keys';
import { MessagesPart } from './messages.part';
import type { UmbraCore } from './umbra.core';
import { UmbraError } from './umbra.errors';
import { UmbraEvents, envelopeKey, groupEvent, receiptEvent, receivedEvent, typingEvent, type UmbraEvent, type UmbraEventHandler, type UmbraEventType, type VanishedMessage } from './umbra.events';

export interface UmbraOptions<Source = never, Target = never, Result = void> extends Omit<UmbraClientOptions, 'store'> {
  /** Where this device's state lives: keys, sessions, history, outbox (see docs/sdk.md, "The store"). */
  store: KeyValueStore;
  /** How files travel: `nodeFiles()` from @umbra/sdk/node, or a browser transport. Without one, `files` refuses. */
  files?: FileTransport<Source, Target, Result>;
  /** Connect the socket before resolving (default true). With false, call `connect()` when ready. */
  connect?: boolean;
  /** How this device makes calls (its RTCPeerConnection factory). Without it, it neither rings nor calls. */
  calls?: CallsFrontDoorOptions;
}

export interface CreateOptions<S = never, T = never, R = void> extends UmbraOptions<S, T, R> {
  /** A handle to claim for the new account ("@" optional); HANDLE_TAKEN leaves the account without one. */
  handle?: string;
  /** Runs the registration proof of work (a browser runs it in a Web Worker); the built-in solver by default. */
  solvePow?: PowSolver;
}

export type LinkOptions<S = never, T = never, R = void> = UmbraOptions<S, T, R> & LinkThisDeviceOptions;

/** What `Umbra.over` needs besides the client. */
export type AssembleOptions<S = never, T = never, R = void> = Pick<UmbraOptions<S, T, R>, 'store' | 'files' | 'now' | 'calls'>;

/**
 * The SDK's front door: one device of one account. `Umbra.create` makes a new account,
 * `Umbra.link` joins an existing one, `Umbra.open` reopens what a store holds. Everything else
 * hangs off the instance (`messages`, `groups`, `files`, `devices`, `account`, `contacts`, `calls`) and every event
 * comes through `on`.
 */
export class Umbra<Source = never, Target = never, Result = void> {
  readonly messages: MessagesPart;
  readonly groups: GroupsPart;
  readonly files: FilesPart<Source, Target, Result>;
  readonly devices: DevicesPart;
  readonly account: AccountPart;
  readonly contacts: ContactsPart;
  readonly calls: CallsPart;
  private readonly events = new UmbraEvents();
  private readonly state: LocalState;
  private closed = false;

  private constructor(
    /** The lower layer (REST, socket, outbox), for what the front door does not cover. */
    readonly client: UmbraClient,
    /** The lower layer (sessions, groups, history). */
    readonly messenger: Messenger,
    receipts: Receipts,
    store: KeyValueStore,
    files: FileTransport<Source, Target, Result> | undefined,
    now: () => number,
    calls: CallsFrontDoorOptions | undefined,
  ) {
    this.state = new LocalState(store);
    const core: UmbraCore = { client, messenger, receipts, state: this.state, store, now, assertOpen: () => this.assertOpen() };
    this.messages = new MessagesPart(core);
    this.groups = new GroupsPart(core);
    this.files = new FilesPart(core, files);
    this.devices = new DevicesPart(core);
    this.account = new AccountPart(core);
    this.contacts = new ContactsPart(core, this.devices);
    this.calls = new CallsPart(core, calls, (e) => this.emit(e));
  }

  /** A new account with this device as its first (it holds the account key): registers, uploads prekeys, claims the handle. */
  static async create<S = never, T = never, R = void>(opts: CreateOptions<S, T, R>): Promise<Umbra<S, T, R>> {
    const handle = opts.handle === undefined ? undefined : parseHandle(opts.handle);
    const client = await UmbraClient.open(opts);
    if (client.hasIdentity) throw new UmbraError('IDENTITY_EXISTS', `this store already holds the identity ${client.identity.accountIdText}: use Umbra.open`);
    await client.createIdentity();
    await client.register(opts.solvePow ? { solvePow: opts.solvePow } : {});
    await client.refillPrekeys();
    await new LocalState(opts.store).set(STATE_KEYS.ready, '1');
    const umbra = await Umbra.assemble(client, opts);
    if (handle) {
      try {
        await umbra.account.setHandle(handle);
      } catch (err) {
        await umbra.close();
        throw err;
      }
    }
    if (opts.connect !== false) await umbra.connect();
    return umbra;
  }

  /**
   * This store's device; with `connect: false` it works offline (history, groups, timers). UmbraError
   * NO_IDENTITY when the store holds none (use `create` or `link`).
   */
  static async open<S = never, T = never, R = void>(opts: UmbraOptions<S, T, R>): Promise<Umbra<S, T, R>> {
    const client = await UmbraClient.open(opts);
    if (!client.hasIdentity) throw new UmbraError('NO_IDENTITY', 'this store holds no identity: use Umbra.create or Umbra.link');
    const umbra = await Umbra.assemble(client, opts);
    if (opts.connect !== false) await umbra.connect();
    return umbra;
  }

  /**
   * A new device joining an existing account (PROTOCOL.md §1): `onQr` shows the link code to the
   * device holding the account key (`devices.link(code)` there), `confirmAccount` shows the account
   * this device is about to join. Resolves once this device is in the account's device list.
   */
  static async link<S = never, T = never, R = void>(opts: LinkOptions<S, T, R>): Promise<Umbra<S, T, R>> {
    const client = await UmbraClient.open(opts);
    if (client.hasIdentity) throw new UmbraError('IDENTITY_EXISTS', `this store already holds the identity ${client.identity.accountIdText}: use Umbra.open`);
    const { onQr, confirmAccount, timeoutMs, signal } = opts;
    try {
      await linkThisDevice(client, { onQr, ...(confirmAccount ? { confirmAccount } : {}), ...(timeoutMs !== undefined ? { timeoutMs } : {}), ...(signal ? { signal } : {}) });
    } catch (err) {
      // Declined, timed out or cancelled: the client stops too (its timers would keep the process alive).
      await client.close().catch(() => undefined);
      throw err;
    }
    await new LocalState(opts.store).set(STATE_KEYS.ready, '1');
    const umbra = await Umbra.assemble(client, opts);
    if (opts.connect !== false) await umbra.connect();
    return umbra;
  }

  /** Whether a store holds a device (then `open` it; else `create` or `link`). */
  static async exists(store: KeyValueStore): Promise<boolean> {
    return (await new LocalState(store).get(STATE_KEYS.identity)) !== undefined;
  }

  /**
   * The front door over an UmbraClient you opened yourself (an app moving over from the lower
   * layers, like the CLI): `opts.store` must be the client's store. One Umbra per client: each one
   * decrypts what the client receives. It connects when you call `connect()` (or the client's).
   */
  static async over<S = never, T = never, R = void>(client: UmbraClient, opts: AssembleOptions<S, T, R>): Promise<Umbra<S, T, R>> {
    if (!client.hasIdentity) throw new UmbraError('NO_IDENTITY', 'this client holds no identity: use Umbra.create or Umbra.link');
    return Umbra.assemble(client, opts);
  }

  private static async assemble<S, T, R>(client: UmbraClient, opts: AssembleOptions<S, T, R>): Promise<Umbra<S, T, R>> {
    const now = opts.now ?? (() => Date.now());
    // The client runs its handlers in order: these look vanished messages up before the Messenger deletes them.
    const vanished = new Map<object, VanishedMessage[]>();
    let lookup: (refs: ExpiredMessageRef[]) => Promise<VanishedMessage[]> = async (refs) => refs.map((envelope) => ({ envelope }));
    client.on('expired', async (ev) => void vanished.set(ev, await lookup(ev.messages)));
    client.on('recalled', async (ev) => void vanished.set(ev, await lookup(ev.messages)));
    const messenger = await Messenger.open(client, opts.store, now);
    lookup = async (refs) => {
      const out: VanishedMessage[] = [];
      for (const envelope of refs) {
        const entry = await messenger.history.findByEnvelope(envelopeKey(envelope));
        out.push(entry ? { envelope, conv: entry.conv, id: entry.id } : { envelope });
      }
      return out;
    };
    const receipts = await Receipts.open(messenger, opts.store);
    const umbra = new Umbra<S, T, R>(client, messenger, receipts, opts.store, opts.files, now, opts.calls);
    const emit = (e: UmbraEvent) => umbra.emit(e);
    const take = (ev: object, refs: ExpiredMessageRef[]) => {
      const found = vanished.get(ev) ?? refs.map((envelope) => ({ envelope }));
      vanished.delete(ev);
      return found;
    };
    client.on('expired', (ev) => emit({ type: 'expired', by: 'server', messages: take(ev, ev.messages) }));
    messenger.history.onExpired((gone) => emit({ type: 'expired', by: 'timer', messages: gone }));
    client.on('recalled', (ev) => emit({ type: 'recalled', messages: take(ev, ev.messages) }));
    messenger.on('message', (m) => {
      const e = receivedEvent(m) ?? groupEvent(m);
      if (e) emit(e);
    });
    messenger.on('error', (error, env) => emit({ type: 'error', source: 'receive', error, envelopeId: env.id }));
    forwardExpiryReceipts(messenger, new CallSignalIds(opts.store), (r) => emit(receiptEvent(r)));
    receipts.on('receipt', (r) => emit(receiptEvent(r)));
    messenger.on('timer', (conv, timer) => emit({ type: 'timer', conv, timer }));
    // A group id is only what the sender claims: shown for a group we know it is a member of, else dropped.
    client.on('typing', (ev) => {
      if (ev.gid === undefined) return emit(typingEvent(ev));
      void messenger.group(ev.gid).then(
        (g) => g?.members.includes(ev.from) && emit(typingEvent(ev, ev.gid)),
        () => undefined,
      );
    });
    client.contacts.onIdentityChange((change) => emit({ type: 'identity-change', change }));
    client.on('devicesChanged', (listVersion) => emit({ type: 'devices', listVersion }));
    client.on('connection', (connected) => emit({ type: 'connection', state: connected ? 'connected' : 'disconnected' }));
    client.on('revoked', (reason) => emit({ type: 'connection', state: 'revoked', reason }));
    client.on('kt-alert', (alert) => emit({ type: 'kt-alert', alert }));
    client.on('kt-warning', (message) => emit({ type: 'kt-warning', message }));
    return umbra;
  }

  /** Listens to one kind of event; returns the function that stops listening. */
  on<E extends UmbraEventType>(type: E, handler: UmbraEventHandler<E>): () => void {
    return this.events.on(type, handler);
  }

  once<E extends UmbraEventType>(type: E, handler: UmbraEventHandler<E>): () => void {
    return this.events.once(type, handler);
  }

  /** Every event, whatever its type. */
  onAny(handler: (event: UmbraEvent) => void | Promise<void>): () => void {
    return this.events.onAny(handler);
  }

  /** The next event of a type (matching `filter`), as a promise; rejects after `timeoutMs` when given. */
  next<E extends UmbraEventType>(type: E, filter?: (e: Extract<UmbraEvent, { type: E }>) => boolean, timeoutMs?: number): Promise<Extract<UmbraEvent, { type: E }>> {
    return this.events.next(type, filter, timeoutMs);
  }

  /** The socket is up (it reconnects by itself; `connection` events say when it changes). */
  get connected(): boolean {
    return this.client.connected;
  }

  /** Connects the socket: queued messages arrive, the outbox drains. Resolves on the first connection. */
  async connect(): Promise<void> {
    this.assertOpen();
    if ((await this.state.get(STATE_KEYS.ready)) === undefined) {
      // A `create` cut short (or a store made by the lower layers) is finished first.
      await finishRegistration(this.client);
      await this.state.set(STATE_KEYS.ready, '1');
    }
    await this.client.connect();
  }

  /** Waits until the messages received so far are handled, stored and acknowledged. */
  async settle(): Promise<void> {
    await this.client.settle();
  }

  /** Disconnects and stops every timer; the store keeps everything (open it again later). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.calls.close().catch(() => undefined);
    await this.client.close();
    this.messenger.history.close();
    this.events.clear();
  }

  /**
   * Closes and deletes everything this device stored (keys, sessions, history, outbox). The server
   * still lists the device: remove it from another device with `devices.remove` (or first, from here).
   */
  async wipe(): Promise<void> {
    await this.close();
    await this.state.wipe();
  }

  private emit(event: UmbraEvent): void {
    if (!this.closed) this.events.emit(event);
  }

  private assertOpen(): void {
    if (this.closed) throw new UmbraError('CLOSED', 'this Umbra instance was closed');
  }
}

/** After an interrupted `create`: a device the server does not know registers now; either way its prekeys are topped up. */
async function finishRegistration(client: UmbraClient): Promise<void> {
  try {
    await client.authenticate();
  } catch (err) {
    if (!(err instanceof UmbraApiError && (err.status === 401 || err.status === 404))) throw err;
    await client.register();
  }
  await client.refillPrekeys();
}

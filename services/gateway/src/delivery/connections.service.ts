import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import type { Socket } from 'socket.io';
import {
  LIMITS,
  ServerEvent,
  type ClientToServerEvents,
  type DeliveredEnvelope,
  type ServerToClientEvents,
} from '@umbra/protocol';
import {
  APP_CONFIG,
  Bus,
  Channels,
  Clock,
  DeviceQueueRepository,
  LOGGER,
  Metrics,
  PresenceStore,
  deviceKey,
  toDeliveredEnvelope,
  type AppConfig,
  type AuthContext,
  type DevicesChangedMessage,
  type ExpiredItem,
  type GatewayMessage,
  type KeysLowMessage,
  type Logger,
  type PresenceClaim,
  type TypingItem,
} from '@umbra/server';
import { RelayClient } from '../messages/relay.client';

export type ClientSocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, { auth: AuthContext }>;

interface Connection {
  socket: ClientSocket;
  auth: AuthContext;
  claim: PresenceClaim;
  /** Pushed and not yet acknowledged: id → bytes. Never more than the delivery window. */
  inFlight: Map<string, number>;
  inFlightBytes: number;
  /** When this socket last acknowledged anything (or connected). */
  lastAckAt: number;
  /** Acknowledged ids whose rows may not be deleted yet: id → when acked. Kept briefly so they are not pushed twice. */
  settling: Map<string, number>;
  /** Seq (decimal string, bigint) of the last envelope a drain read; the next drain pass continues after it. */
  cursor: string;
  /** Postgres may hold envelopes this socket was never pushed. */
  pending: boolean;
  /** …some of them below the cursor, so the next pass starts from the head. */
  rescan: boolean;
  draining: boolean;
  /** The last drain stopped for lack of room; the next one starts when acks make room. */
  blocked: boolean;
  /** "queue-empty" was sent (once, after the first complete drain). */
  announced: boolean;
  expiryTimer: NodeJS.Timeout;
}

/** How long an acknowledged id is remembered while the ack job deletes its row. */
const SETTLE_MS = 10_000;
/** Most acknowledged ids remembered per socket (the oldest are forgotten first; at worst one is pushed again). */
const SETTLE_MAX = 2 * LIMITS.DELIVERY_WINDOW_MESSAGES;
/** What an envelope adds to its content in a `messages` frame (ids, account id text, timestamps, JSON keys). */
const ENVELOPE_OVERHEAD_BYTES = 320;
/** Devices per queue-head query. */
const CHECK_BATCH = 1000;

const envelopeBytes = (m: DeliveredEnvelope) => m.content.length + ENVELOPE_OVERHEAD_BYTES;

/**
 * The sockets this gateway instance holds: presence in Redis, and delivery. Postgres is the truth:
 * a socket gets live pushes while its window has room and nothing is waiting; everything else
 * (its queue on connect, pushes that did not fit, pub/sub messages lost in a Redis blip) comes
 * from drains of its queue in server order. At most DELIVERY_WINDOW_MESSAGES / _BYTES are ever
 * unacknowledged on one socket, and nothing waits in memory for room.
 */
@Injectable()
export class ConnectionsService implements OnModuleInit, OnModuleDestroy {
  private readonly connections = new Map<string, Connection>();
  private refreshTimer: NodeJS.Timeout | undefined;
  private checkTimer: NodeJS.Timeout | undefined;
  private checking = false;
  private checkAllAgain = false;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(Bus) private readonly bus: Bus,
    @Inject(PresenceStore) private readonly presence: PresenceStore,
    @Inject(DeviceQueueRepository) private readonly envelopes: DeviceQueueRepository,
    @Inject(RelayClient) private readonly relay: RelayClient,
    @Inject(Clock) private readonly clock: Clock,
    @Inject(Metrics) private readonly metrics: Metrics,
  ) {}

  async onModuleInit(): Promise<void> {
    this.relay.onMessage((msg: GatewayMessage) => {
      if (msg.kind === 'deliver' || (msg.kind === 'stored' && msg.items)) this.deliver(msg.items ?? []);
      else if (msg.kind === 'expired') this.expired(msg.items);
      else if (msg.kind === 'recalled') this.expired(msg.items, ServerEvent.Recalled);
      else if (msg.kind === 'typing') this.typing(msg.items);
    });
    await this.bus.subscribe<DevicesChangedMessage>(Channels.devicesChanged(this.config.REDIS_PREFIX), (msg) => this.onDevicesChanged(msg));
    await this.bus.subscribe<KeysLowMessage>(Channels.keysLow(this.config.REDIS_PREFIX), (msg) => {
      this.connections.get(msg.device)?.socket.emit(ServerEvent.KeysLow, { oneTimePreKeys: msg.oneTimePreKeys, oneTimeKemPreKeys: msg.oneTimeKemPreKeys });
    });
    // Whatever was published while the subscriber was away is lost: look at every queue again.
    this.bus.onResubscribed(() => void this.check(true));
    this.refreshTimer = setInterval(() => void this.refreshPresence(), (this.presence.ttlS * 1000) / 3);
    this.refreshTimer.unref();
    this.checkTimer = setInterval(() => void this.check(false), this.config.DELIVERY_CHECK_INTERVAL_MS);
    this.checkTimer.unref();
  }

  get size(): number {
    return this.connections.size;
  }

  async connect(socket: ClientSocket, auth: AuthContext): Promise<void> {
    const key = deviceKey(auth);
    const previous = this.connections.get(key);
    if (previous) previous.socket.disconnect(true);
    const conn: Connection = {
      socket,
      auth,
      claim: { deviceKey: key, connectionId: socket.id },
      inFlight: new Map(),
      inFlightBytes: 0,
      lastAckAt: Date.now(),
      settling: new Map(),
      cursor: '0',
      pending: true,
      rescan: false,
      draining: false,
      blocked: false,
      announced: false,
      expiryTimer: setTimeout(() => {
        socket.emit(ServerEvent.Revoked, { reason: 'token_expired' });
        socket.disconnect(true);
      }, Math.max(0, Math.min(auth.expiresAt - this.clock.now(), 2 ** 31 - 1))),
    };
    this.connections.set(key, conn);
    this.metrics.connectedDevices.set(this.connections.size);
    // Presence first, then the drain: an envelope stored before its presence lookup saw this
    // socket is committed before the drain reads the queue.
    await this.presence.claim(conn.claim, this.config.instanceId);
    await this.drain(conn);
  }

  disconnect(socket: ClientSocket): void {
    const auth = socket.data.auth;
    if (!auth) return;
    const conn = this.connections.get(deviceKey(auth));
    if (!conn || conn.socket !== socket) return;
    this.forget(conn);
    this.presence.clear(conn.claim, this.config.instanceId).catch(() => undefined);
  }

  private forget(conn: Connection): void {
    clearTimeout(conn.expiryTimer);
    this.connections.delete(conn.claim.deviceKey);
    this.metrics.connectedDevices.set(this.connections.size);
  }

  /**
   * The client acknowledged these ids: they leave the window. `deleting` is false when the ack was
   * refused (rate limit): the rows stay queued and come again with a later drain.
   */
  acked(socket: ClientSocket, ids: string[], deleting = true): void {
    const conn = this.connections.get(deviceKey(socket.data.auth));
    if (!conn || conn.socket !== socket) return;
    const now = Date.now();
    conn.lastAckAt = now;
    for (const id of ids) {
      const bytes = conn.inFlight.get(id);
      if (bytes === undefined) continue;
      conn.inFlight.delete(id);
      conn.inFlightBytes -= bytes;
      if (deleting) this.settle(conn, id, now);
      conn.blocked = false;
    }
    if (conn.pending) void this.drain(conn);
  }

  private release(conn: Connection, id: string): void {
    const bytes = conn.inFlight.get(id);
    if (bytes === undefined) return;
    conn.inFlight.delete(id);
    conn.inFlightBytes -= bytes;
    conn.blocked = false;
  }

  private settle(conn: Connection, id: string, now: number): void {
    conn.settling.set(id, now);
    if (conn.settling.size > SETTLE_MAX) conn.settling.delete(conn.settling.keys().next().value!);
  }

  private fits(conn: Connection, bytes: number): boolean {
    if (conn.inFlight.size === 0) return true;
    return conn.inFlight.size < LIMITS.DELIVERY_WINDOW_MESSAGES && conn.inFlightBytes + bytes <= LIMITS.DELIVERY_WINDOW_BYTES;
  }

  private reserve(conn: Connection, m: DeliveredEnvelope): void {
    const bytes = envelopeBytes(m);
    conn.inFlight.set(m.id, bytes);
    conn.inFlightBytes += bytes;
  }

  private known(conn: Connection, id: string): boolean {
    return conn.inFlight.has(id) || conn.settling.has(id);
  }

  /**
   * Pushes what is queued and was not pushed yet, in server order, while the window has room. One
   * loop per socket; whoever finds it running marks the socket pending and the loop goes round again.
   */
  private async drain(conn: Connection): Promise<void> {
    if (conn.draining) return;
    conn.draining = true;
    try {
      while (conn.pending && this.live(conn)) {
        if (conn.rescan) {
          conn.cursor = '0';
          conn.rescan = false;
        }
        conn.pending = false;
        for (;;) {
          const room = LIMITS.DELIVERY_WINDOW_MESSAGES - conn.inFlight.size;
          if (room <= 0) {
            conn.pending = true;
            conn.blocked = true;
            return;
          }
          const page = await this.envelopes.fetchPage(conn.auth, conn.cursor, Math.min(room, LIMITS.FETCH_PAGE_MAX), this.clock.now());
          if (!this.live(conn)) return;
          const accountText = new Map<string, string>();
          const messages: DeliveredEnvelope[] = [];
          let full = false;
          for (const e of page.envelopes) {
            const m = toDeliveredEnvelope(e, accountText);
            if (!this.known(conn, m.id)) {
              if (!this.fits(conn, envelopeBytes(m))) {
                full = true;
                break;
              }
              this.reserve(conn, m);
              messages.push(m);
            }
            conn.cursor = e.seq;
          }
          if (messages.length > 0) {
            conn.socket.emit(ServerEvent.Messages, { messages });
            this.metrics.messagesDelivered.inc({ path: 'drain' }, messages.length);
          }
          if (full) {
            conn.pending = true;
            conn.blocked = true;
            return;
          }
          if (!page.more) break;
        }
      }
      if (!conn.announced && !conn.pending && this.live(conn)) {
        conn.announced = true;
        conn.socket.emit(ServerEvent.QueueEmpty, {});
      }
    } catch (err) {
      this.logger.error({ err: String(err) }, 'drain failed; disconnecting so the client reconnects');
      conn.socket.disconnect(true);
    } finally {
      conn.draining = false;
    }
  }

  private live(conn: Connection): boolean {
    return conn.socket.connected && this.connections.get(conn.claim.deviceKey) === conn;
  }

  /** Not pushed now: it is in Postgres, and a drain will bring it. */
  private missed(conn: Connection, id: string): void {
    conn.pending = true;
    if (BigInt(id) <= BigInt(conn.cursor)) conn.rescan = true;
    if (!conn.draining && !conn.blocked) void this.drain(conn);
  }

  private deliver(items: { to: string; envelope: DeliveredEnvelope }[]): void {
    const now = this.clock.now();
    const perSocket = new Map<Connection, DeliveredEnvelope[]>();
    for (const item of items) {
      const conn = this.connections.get(item.to);
      if (!conn) continue;
      const m = item.envelope;
      // Never deliver what has vanished, even if its expiry job has not run yet.
      if (m.expiresAt > 0 && m.expiresAt <= now) continue;
      if (this.known(conn, m.id)) continue;
      // While a drain runs or something waits, pushing now would overtake it; without room, nothing is held here.
      if (conn.draining || conn.pending || !this.fits(conn, envelopeBytes(m))) {
        this.missed(conn, m.id);
        continue;
      }
      this.reserve(conn, m);
      let list = perSocket.get(conn);
      if (!list) {
        list = [];
        perSocket.set(conn, list);
      }
      list.push(m);
      this.metrics.deliveryLatency.observe(Math.max(0, now - m.serverTimestamp) / 1000);
    }
    for (const [conn, messages] of perSocket) {
      conn.socket.emit(ServerEvent.Messages, { messages });
      this.metrics.messagesDelivered.inc({ path: 'live' }, messages.length);
    }
  }

  private typing(items: TypingItem[]): void {
    for (const { to, from, fromDeviceId, state, gid } of items) {
      this.connections.get(to)?.socket.emit(ServerEvent.Typing, { from, fromDeviceId, state, ...(gid !== undefined ? { gid } : {}) });
    }
  }

  /** Envelopes deleted before this device acknowledged them (expiry, or recalled by their sender) leave its window. */
  private expired(items: ExpiredItem[], event: typeof ServerEvent.Expired | typeof ServerEvent.Recalled = ServerEvent.Expired): void {
    for (const item of items) {
      const conn = this.connections.get(item.to);
      if (!conn) continue;
      for (const id of item.ids) {
        const bytes = conn.inFlight.get(id);
        if (bytes !== undefined) {
          conn.inFlight.delete(id);
          conn.inFlightBytes -= bytes;
          conn.blocked = false;
        }
        conn.settling.delete(id);
      }
      conn.socket.emit(event, { ids: item.ids, messages: item.messages });
      if (conn.pending) void this.drain(conn);
    }
  }

  /**
   * Finds queued envelopes that sockets were never pushed (a lost pub/sub message): one indexed
   * probe of each queue's head, batched. An idle socket whose head is neither in flight nor just
   * acknowledged re-drains from its head. `all` (after a resubscribe) also re-drains busy sockets.
   */
  async check(all: boolean): Promise<void> {
    if (this.checking) {
      // A re-drain of every socket asked for mid-check runs right after it.
      if (all) this.checkAllAgain = true;
      return;
    }
    this.checking = true;
    try {
      const now = Date.now();
      const idle: Connection[] = [];
      const stale: Connection[] = [];
      for (const conn of this.connections.values()) {
        for (const [id, at] of conn.settling) {
          if (now - at < SETTLE_MS) break;
          conn.settling.delete(id);
        }
        if (conn.inFlight.size > 0 && now - conn.lastAckAt >= this.config.DELIVERY_CHECK_INTERVAL_MS) stale.push(conn);
        if (!conn.draining && !conn.pending && conn.inFlight.size === 0) idle.push(conn);
        else if (all) {
          conn.pending = true;
          conn.rescan = true;
          void this.drain(conn);
        }
      }
      // Nothing acknowledged on the socket for a while: envelopes deleted another way (a REST ack,
      // expiry) leave the window; those still stored stay in it, so a silent client gets no more.
      for (let i = 0; i < stale.length; i += CHECK_BATCH) {
        const batch = stale.slice(i, i + CHECK_BATCH).map((conn) => ({ conn, seqs: [...conn.inFlight.keys()] }));
        const stored = await this.envelopes.stillStored(batch.map((b) => ({ recipient: b.conn.auth, seqs: b.seqs })));
        const keep = new Set(stored.map((r) => `${deviceKey(r.recipient)}|${r.seq}`));
        for (const { conn, seqs } of batch) {
          for (const id of seqs) if (!keep.has(`${conn.claim.deviceKey}|${id}`)) this.release(conn, id);
          if (conn.pending) void this.drain(conn);
        }
      }
      for (let i = 0; i < idle.length; i += CHECK_BATCH) {
        const batch = idle.slice(i, i + CHECK_BATCH);
        const heads = await this.envelopes.queueHeads(batch.map((c) => c.auth), this.clock.now());
        for (const head of heads) {
          const conn = this.connections.get(deviceKey(head.recipient));
          // After a resubscribe any queued envelope may hide behind an acknowledged head: drain them all.
          if (!conn || (!all && this.known(conn, head.seq))) continue;
          conn.pending = true;
          conn.rescan = true;
          void this.drain(conn);
        }
      }
    } catch (err) {
      this.logger.warn({ err: String(err) }, 'delivery check failed');
    } finally {
      this.checking = false;
    }
    if (this.checkAllAgain) {
      this.checkAllAgain = false;
      await this.check(true);
    }
  }

  /** Extends presence for every socket held here; a socket whose device reconnected elsewhere is closed. */
  async refreshPresence(): Promise<void> {
    try {
      await this.reclaimPresence();
    } catch (err) {
      this.logger.warn({ err: String(err) }, 'presence refresh failed');
    }
  }

  /** Extends or re-claims (compare-and-set) presence for every socket held here; those another connection owns are closed. */
  async reclaimPresence(): Promise<{ reclaimed: number; superseded: number }> {
    const claims = [...this.connections.values()].map((c) => c.claim);
    const lost = await this.presence.refresh(claims, this.config.instanceId);
    let superseded = 0;
    for (const claim of lost) {
      const conn = this.connections.get(claim.deviceKey);
      if (!conn || conn.claim.connectionId !== claim.connectionId) continue;
      this.forget(conn);
      conn.socket.disconnect(true);
      superseded++;
    }
    return { reclaimed: claims.length - lost.length, superseded };
  }

  private onDevicesChanged(msg: DevicesChangedMessage): void {
    for (const conn of this.connections.values()) {
      if (conn.auth.accountId.toString('hex') !== msg.account) continue;
      if (msg.removed.includes(conn.auth.deviceId)) {
        conn.socket.emit(ServerEvent.Revoked, { reason: 'device_removed' });
        conn.socket.disconnect(true);
      } else {
        conn.socket.emit(ServerEvent.DevicesChanged, { accountId: conn.auth.accountIdText, listVersion: msg.listVersion });
      }
    }
  }

  /** Closes every socket; clients reconnect to another instance and drain there. */
  async onModuleDestroy(): Promise<void> {
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    if (this.checkTimer) clearInterval(this.checkTimer);
    const conns = [...this.connections.values()];
    for (const conn of conns) {
      clearTimeout(conn.expiryTimer);
      conn.socket.disconnect(true);
    }
    this.connections.clear();
    await Promise.all(conns.map((c) => this.presence.clear(c.claim, this.config.instanceId).catch(() => undefined)));
  }
}

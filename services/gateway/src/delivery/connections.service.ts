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
  EnvelopesRepository,
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
} from '@umbra/server';
import { RelayClient } from '../messages/relay.client';

export type ClientSocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, { auth: AuthContext }>;

interface Connection {
  socket: ClientSocket;
  auth: AuthContext;
  key: string;
  /** While the queue drains, live pushes wait here so the device sees server order. */
  draining: boolean;
  buffered: DeliveredEnvelope[];
  drainedIds: Set<string>;
  unacked: number;
  expiryTimer: NodeJS.Timeout;
}

/** Most unacknowledged drained envelopes per socket before the next page is read. */
const DRAIN_WINDOW = 2 * LIMITS.FETCH_PAGE_MAX;
const DRAIN_WAIT_MS = 10_000;

/**
 * The sockets this gateway instance holds: presence in Redis, live pushes from the relay, and the
 * drain of queued envelopes on connect (paged, in server order, then "queue-empty").
 */
@Injectable()
export class ConnectionsService implements OnModuleInit, OnModuleDestroy {
  private readonly connections = new Map<string, Connection>();
  private refreshTimer: NodeJS.Timeout | undefined;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(Bus) private readonly bus: Bus,
    @Inject(PresenceStore) private readonly presence: PresenceStore,
    @Inject(EnvelopesRepository) private readonly envelopes: EnvelopesRepository,
    @Inject(RelayClient) private readonly relay: RelayClient,
    @Inject(Clock) private readonly clock: Clock,
    @Inject(Metrics) private readonly metrics: Metrics,
  ) {}

  async onModuleInit(): Promise<void> {
    this.relay.onMessage((msg: GatewayMessage) => {
      if (msg.kind === 'deliver') this.deliver(msg.items);
      else if (msg.kind === 'expired') this.expired(msg.items);
    });
    await this.bus.subscribe<DevicesChangedMessage>(Channels.devicesChanged(this.config.REDIS_PREFIX), (msg) => this.onDevicesChanged(msg));
    await this.bus.subscribe<KeysLowMessage>(Channels.keysLow(this.config.REDIS_PREFIX), (msg) => {
      this.connections.get(msg.device)?.socket.emit(ServerEvent.KeysLow, { oneTimePreKeys: msg.oneTimePreKeys, oneTimeKemPreKeys: msg.oneTimeKemPreKeys });
    });
    this.refreshTimer = setInterval(() => {
      this.presence.refresh([...this.connections.keys()], this.config.instanceId).catch((err: unknown) => this.logger.warn({ err: String(err) }, 'presence refresh failed'));
    }, (this.presence.ttlS * 1000) / 3);
    this.refreshTimer.unref();
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
      key,
      draining: true,
      buffered: [],
      drainedIds: new Set(),
      unacked: 0,
      expiryTimer: setTimeout(() => {
        socket.emit(ServerEvent.Revoked, { reason: 'token_expired' });
        socket.disconnect(true);
      }, Math.max(0, Math.min(auth.expiresAt - this.clock.now(), 2 ** 31 - 1))),
    };
    this.connections.set(key, conn);
    this.metrics.connectedDevices.set(this.connections.size);
    // Presence first, then the drain: an envelope stored before its presence lookup saw this
    // socket is committed before the drain reads the queue.
    await this.presence.set(key, this.config.instanceId);
    await this.drain(conn);
  }

  disconnect(socket: ClientSocket): void {
    const auth = socket.data.auth;
    if (!auth) return;
    const key = deviceKey(auth);
    const conn = this.connections.get(key);
    if (!conn || conn.socket !== socket) return;
    clearTimeout(conn.expiryTimer);
    this.connections.delete(key);
    this.metrics.connectedDevices.set(this.connections.size);
    this.presence.clear(key, this.config.instanceId).catch(() => undefined);
  }

  acked(socket: ClientSocket, n: number): void {
    const conn = this.connections.get(deviceKey(socket.data.auth));
    if (conn && conn.socket === socket) conn.unacked = Math.max(0, conn.unacked - n);
  }

  private async drain(conn: Connection): Promise<void> {
    let after = 0;
    try {
      for (;;) {
        if (!conn.socket.connected) return;
        const page = await this.envelopes.fetchPage(conn.auth, after, LIMITS.FETCH_PAGE_MAX, this.clock.now());
        if (page.envelopes.length > 0) {
          const accountText = new Map<string, string>();
          const messages = page.envelopes.map((e) => toDeliveredEnvelope(e, accountText));
          for (const m of messages) conn.drainedIds.add(m.id);
          after = page.envelopes[page.envelopes.length - 1]!.seq;
          conn.unacked += messages.length;
          conn.socket.emit(ServerEvent.Messages, { messages });
          this.metrics.messagesDelivered.inc({ path: 'drain' }, messages.length);
        }
        if (!page.more) break;
        await this.waitForAcks(conn);
      }
      const live = conn.buffered.filter((m) => !conn.drainedIds.has(m.id));
      conn.draining = false;
      conn.buffered = [];
      conn.drainedIds = new Set();
      if (live.length > 0) {
        conn.socket.emit(ServerEvent.Messages, { messages: live });
        this.metrics.messagesDelivered.inc({ path: 'live' }, live.length);
      }
      conn.socket.emit(ServerEvent.QueueEmpty, {});
    } catch (err) {
      this.logger.error({ err: String(err) }, 'drain failed; disconnecting so the client reconnects');
      conn.socket.disconnect(true);
    }
  }

  private async waitForAcks(conn: Connection): Promise<void> {
    const deadline = Date.now() + DRAIN_WAIT_MS;
    while (conn.unacked >= DRAIN_WINDOW && conn.socket.connected && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  private deliver(items: { to: string; envelope: DeliveredEnvelope }[]): void {
    const now = this.clock.now();
    const perSocket = new Map<Connection, DeliveredEnvelope[]>();
    for (const item of items) {
      const conn = this.connections.get(item.to);
      if (!conn) continue;
      // Never deliver what has vanished, even if its expiry job has not run yet.
      if (item.envelope.expiresAt > 0 && item.envelope.expiresAt <= now) continue;
      if (conn.draining) {
        conn.buffered.push(item.envelope);
        continue;
      }
      let list = perSocket.get(conn);
      if (!list) {
        list = [];
        perSocket.set(conn, list);
      }
      list.push(item.envelope);
      this.metrics.deliveryLatency.observe(Math.max(0, now - item.envelope.serverTimestamp) / 1000);
    }
    for (const [conn, messages] of perSocket) {
      conn.unacked += messages.length;
      conn.socket.emit(ServerEvent.Messages, { messages });
      this.metrics.messagesDelivered.inc({ path: 'live' }, messages.length);
    }
  }

  private expired(items: ExpiredItem[]): void {
    for (const item of items) {
      const conn = this.connections.get(item.to);
      if (!conn) continue;
      if (conn.draining) {
        const gone = new Set(item.ids);
        conn.buffered = conn.buffered.filter((e) => !gone.has(e.id));
      }
      conn.socket.emit(ServerEvent.Expired, { ids: item.ids, messages: item.messages });
    }
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
    const keys = [...this.connections.keys()];
    for (const conn of this.connections.values()) {
      clearTimeout(conn.expiryTimer);
      conn.socket.disconnect(true);
    }
    this.connections.clear();
    await Promise.all(keys.map((k) => this.presence.clear(k, this.config.instanceId).catch(() => undefined)));
  }
}

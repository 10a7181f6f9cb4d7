import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { APP_CONFIG, LOGGER, PresenceStore, deviceKey, type AppConfig, type AuthContext, type Logger } from '@umbra/server';
import { ConnectionRegistry, type ClientSocket, type Connection } from './connection.registry';
import { ControlEventsService } from './control-events.service';
import { DeliveryWindow } from './delivery.window';
import { QueueDrainer } from './queue.drainer';

/**
 * A device's socket on this gateway from connect to close: it replaces the device's previous
 * socket, claims presence in Redis (refreshed while it stays), has its queue drained, and lets its
 * acks make room in its window. Postgres is the truth: a socket gets live pushes (PushDispatcher)
 * while its window has room and nothing is waiting; everything else comes from drains (QueueDrainer).
 */
@Injectable()
export class ConnectionsService implements OnModuleInit, OnModuleDestroy {
  private refreshTimer: NodeJS.Timeout | undefined;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(PresenceStore) private readonly presence: PresenceStore,
    @Inject(ConnectionRegistry) private readonly registry: ConnectionRegistry,
    @Inject(QueueDrainer) private readonly drainer: QueueDrainer,
    @Inject(ControlEventsService) private readonly control: ControlEventsService,
  ) {}

  onModuleInit(): void {
    this.refreshTimer = setInterval(() => void this.refreshPresence(), (this.presence.ttlS * 1000) / 3);
    this.refreshTimer.unref();
  }

  async connect(socket: ClientSocket, auth: AuthContext): Promise<void> {
    const key = deviceKey(auth);
    const previous = this.registry.byDevice.get(key);
    if (previous) previous.socket.disconnect(true);
    const conn: Connection = {
      socket,
      auth,
      claim: { deviceKey: key, connectionId: socket.id },
      window: new DeliveryWindow(),
      cursor: '0',
      pending: true,
      rescan: false,
      draining: false,
      announced: false,
      expiryTimer: this.control.revokeAtExpiry(socket, auth),
    };
    this.registry.add(conn);
    // Presence first, then the drain: an envelope stored before its presence lookup saw this
    // socket is committed before the drain reads the queue.
    await this.presence.claim(conn.claim, this.config.instanceId);
    await this.drainer.drain(conn);
  }

  disconnect(socket: ClientSocket): void {
    if (!socket.data.auth) return;
    const conn = this.registry.of(socket);
    if (!conn) return;
    this.forget(conn);
    this.presence.clear(conn.claim, this.config.instanceId).catch(() => undefined);
  }

  /**
   * The client acknowledged these ids: they leave the window. `deleting` is false when the ack was
   * refused (rate limit): the rows stay queued and come again with a later drain.
   */
  acked(socket: ClientSocket, ids: string[], deleting = true): void {
    const conn = this.registry.of(socket);
    if (!conn) return;
    conn.window.acked(ids, deleting);
    if (conn.pending) void this.drainer.drain(conn);
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
    const claims = [...this.registry.byDevice.values()].map((c) => c.claim);
    const lost = await this.presence.refresh(claims, this.config.instanceId);
    let superseded = 0;
    for (const claim of lost) {
      const conn = this.registry.byDevice.get(claim.deviceKey);
      if (!conn || conn.claim.connectionId !== claim.connectionId) continue;
      this.forget(conn);
      conn.socket.disconnect(true);
      superseded++;
    }
    return { reclaimed: claims.length - lost.length, superseded };
  }

  private forget(conn: Connection): void {
    clearTimeout(conn.expiryTimer);
    this.registry.remove(conn);
  }

  /** Closes every socket; clients reconnect to another instance and drain there. */
  async onModuleDestroy(): Promise<void> {
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    const conns = [...this.registry.byDevice.values()];
    for (const conn of conns) {
      clearTimeout(conn.expiryTimer);
      conn.socket.disconnect(true);
    }
    this.registry.clear();
    await Promise.all(conns.map((c) => this.presence.clear(c.claim, this.config.instanceId).catch(() => undefined)));
  }
}

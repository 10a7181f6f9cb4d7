import { Inject, Injectable } from '@nestjs/common';
import { LIMITS, ServerEvent, type DeliveredEnvelope } from '@umbra/protocol';
import { Clock, DeviceQueueRepository, LOGGER, Metrics, toDeliveredEnvelope, type Logger } from '@umbra/server';
import { ConnectionRegistry, type Connection } from './connection.registry';
import { envelopeBytes } from './delivery.window';

/**
 * Brings a socket what its queue in Postgres holds and it was never pushed, in server order: its
 * queue on connect, pushes that did not fit its window, pub/sub messages lost in a Redis blip.
 * Nothing waits in memory for room: a drain that fills the window stops, and acks restart it.
 */
@Injectable()
export class QueueDrainer {
  constructor(
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(DeviceQueueRepository) private readonly envelopes: DeviceQueueRepository,
    @Inject(Clock) private readonly clock: Clock,
    @Inject(Metrics) private readonly metrics: Metrics,
    @Inject(ConnectionRegistry) private readonly registry: ConnectionRegistry,
  ) {}

  /**
   * Pushes what is queued and was not pushed yet, in server order, while the window has room. One
   * loop per socket; whoever finds it running marks the socket pending and the loop goes round again.
   */
  async drain(conn: Connection): Promise<void> {
    if (conn.draining) return;
    conn.draining = true;
    const window = conn.window;
    try {
      while (conn.pending && this.registry.live(conn)) {
        if (conn.rescan) {
          conn.cursor = '0';
          conn.rescan = false;
        }
        conn.pending = false;
        for (;;) {
          const room = LIMITS.DELIVERY_WINDOW_MESSAGES - window.count;
          if (room <= 0) {
            conn.pending = true;
            window.blocked = true;
            return;
          }
          const page = await this.envelopes.fetchPage(conn.auth, conn.cursor, Math.min(room, LIMITS.FETCH_PAGE_MAX), this.clock.now());
          if (!this.registry.live(conn)) return;
          const messages: DeliveredEnvelope[] = [];
          let full = false;
          for (const e of page.envelopes) {
            const m = toDeliveredEnvelope(e);
            if (!window.known(m.id)) {
              if (!window.fits(envelopeBytes(m))) {
                full = true;
                break;
              }
              window.reserve(m);
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
            window.blocked = true;
            return;
          }
          if (!page.more) break;
        }
      }
      if (!conn.announced && !conn.pending && this.registry.live(conn)) {
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

  /** Reads the queue again from its head (an envelope may hide behind what was already pushed). */
  redrainFromHead(conn: Connection): Promise<void> {
    conn.pending = true;
    conn.rescan = true;
    return this.drain(conn);
  }

  /** Not pushed now: it is in Postgres, and a drain will bring it. */
  missed(conn: Connection, id: string): void {
    conn.pending = true;
    if (BigInt(id) <= BigInt(conn.cursor)) conn.rescan = true;
    if (!conn.draining && !conn.window.blocked) void this.drain(conn);
  }
}

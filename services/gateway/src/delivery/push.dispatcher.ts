import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { ServerEvent, type DeliveredEnvelope } from '@umbra/protocol';
import { Clock, Metrics, type ExpiredItem, type GatewayMessage } from '@umbra/server';
import { RelayClient } from '../messages/relay.client';
import { ConnectionRegistry, type Connection } from './connection.registry';
import { ControlEventsService } from './control-events.service';
import { envelopeBytes } from './delivery.window';
import { QueueDrainer } from './queue.drainer';

/**
 * What the relays publish to this gateway for its sockets: deliveries (also those carried in a
 * "stored" answer) are pushed while the socket's window has room and nothing is waiting — never
 * overtaking a drain; the rest is left to a drain. Expired and recalled envelopes leave the window.
 */
@Injectable()
export class PushDispatcher implements OnModuleInit {
  constructor(
    @Inject(RelayClient) private readonly relay: RelayClient,
    @Inject(Clock) private readonly clock: Clock,
    @Inject(Metrics) private readonly metrics: Metrics,
    @Inject(ConnectionRegistry) private readonly registry: ConnectionRegistry,
    @Inject(QueueDrainer) private readonly drainer: QueueDrainer,
    @Inject(ControlEventsService) private readonly control: ControlEventsService,
  ) {}

  onModuleInit(): void {
    this.relay.onMessage((msg: GatewayMessage) => {
      if (msg.kind === 'deliver' || (msg.kind === 'stored' && msg.items)) this.deliver(msg.items ?? []);
      else if (msg.kind === 'expired') this.expired(msg.items);
      else if (msg.kind === 'recalled') this.expired(msg.items, ServerEvent.Recalled);
      else if (msg.kind === 'typing') this.control.typing(msg.items);
    });
  }

  private deliver(items: { to: string; envelope: DeliveredEnvelope }[]): void {
    const now = this.clock.now();
    const connections = this.registry.byDevice;
    const perSocket = new Map<Connection, DeliveredEnvelope[]>();
    for (const item of items) {
      const conn = connections.get(item.to);
      if (!conn) continue;
      const m = item.envelope;
      // Never deliver what has vanished, even if its expiry job has not run yet.
      if (m.expiresAt > 0 && m.expiresAt <= now) continue;
      const window = conn.window;
      if (window.known(m.id)) continue;
      // While a drain runs or something waits, pushing now would overtake it; without room, nothing is held here.
      if (conn.draining || conn.pending || !window.fits(envelopeBytes(m))) {
        this.drainer.missed(conn, m.id);
        continue;
      }
      window.reserve(m);
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

  /** Envelopes deleted before this device acknowledged them (expiry, or recalled by their sender) leave its window. */
  private expired(items: ExpiredItem[], event: typeof ServerEvent.Expired | typeof ServerEvent.Recalled = ServerEvent.Expired): void {
    const connections = this.registry.byDevice;
    for (const item of items) {
      const conn = connections.get(item.to);
      if (!conn) continue;
      for (const id of item.ids) conn.window.drop(id);
      conn.socket.emit(event, { ids: item.ids, messages: item.messages });
      if (conn.pending) void this.drainer.drain(conn);
    }
  }
}

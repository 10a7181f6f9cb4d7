import { Inject, Injectable } from '@nestjs/common';
import type { Socket } from 'socket.io';
import type { ClientToServerEvents, ServerToClientEvents } from '@umbra/protocol';
import { Metrics, deviceKey, type AuthContext, type PresenceClaim } from '@umbra/server';
import type { DeliveryWindow } from './delivery.window';

export type ClientSocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, { auth: AuthContext }>;

/** A device's socket on this gateway and its delivery state. */
export interface Connection {
  socket: ClientSocket;
  auth: AuthContext;
  claim: PresenceClaim;
  window: DeliveryWindow;
  /** Seq (decimal string, bigint) of the last envelope a drain read; the next drain pass continues after it. */
  cursor: string;
  /** Postgres may hold envelopes this socket was never pushed. */
  pending: boolean;
  /** …some of them below the cursor, so the next pass starts from the head. */
  rescan: boolean;
  draining: boolean;
  /** "queue-empty" was sent (once, after the first complete drain). */
  announced: boolean;
  expiryTimer: NodeJS.Timeout;
}

/** The sockets this gateway instance holds: one per device, the newest. */
@Injectable()
export class ConnectionRegistry {
  private readonly connections = new Map<string, Connection>();
  /** Device key → its connection; changed only through add and remove. */
  readonly byDevice: ReadonlyMap<string, Connection> = this.connections;

  constructor(@Inject(Metrics) private readonly metrics: Metrics) {}

  add(conn: Connection): void {
    this.connections.set(conn.claim.deviceKey, conn);
    this.metrics.connectedDevices.set(this.connections.size);
  }

  remove(conn: Connection): void {
    this.connections.delete(conn.claim.deviceKey);
    this.metrics.connectedDevices.set(this.connections.size);
  }

  /** Forgets every connection at once (shutdown). */
  clear(): void {
    this.connections.clear();
    this.metrics.connectedDevices.set(0);
  }

  /** The connection of this socket, unless another socket of its device replaced it. */
  of(socket: ClientSocket): Connection | undefined {
    const conn = this.connections.get(deviceKey(socket.data.auth));
    return conn && conn.socket === socket ? conn : undefined;
  }

  live(conn: Connection): boolean {
    return conn.socket.connected && this.connections.get(conn.claim.deviceKey) === conn;
  }
}

import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { ServerEvent } from '@umbra/protocol';
import {
  APP_CONFIG,
  Bus,
  Channels,
  Clock,
  type AppConfig,
  type AuthContext,
  type DevicesChangedMessage,
  type KeysLowMessage,
  type TypingItem,
} from '@umbra/server';
import { ConnectionRegistry, type ClientSocket } from './connection.registry';

/** Events for the sockets held here that are not envelopes: keys-low, revoked, devices-changed, typing. */
@Injectable()
export class ControlEventsService implements OnModuleInit {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(Bus) private readonly bus: Bus,
    @Inject(Clock) private readonly clock: Clock,
    @Inject(ConnectionRegistry) private readonly registry: ConnectionRegistry,
  ) {}

  async onModuleInit(): Promise<void> {
    await this.bus.subscribe<DevicesChangedMessage>(Channels.devicesChanged(this.config.REDIS_PREFIX), (msg) => this.onDevicesChanged(msg));
    await this.bus.subscribe<KeysLowMessage>(Channels.keysLow(this.config.REDIS_PREFIX), (msg) => {
      this.registry.byDevice.get(msg.device)?.socket.emit(ServerEvent.KeysLow, { oneTimePreKeys: msg.oneTimePreKeys, oneTimeKemPreKeys: msg.oneTimeKemPreKeys });
    });
  }

  /** Revokes and closes the socket when its token expires; the caller clears the timer when the socket goes first. */
  revokeAtExpiry(socket: ClientSocket, auth: AuthContext): NodeJS.Timeout {
    return setTimeout(() => {
      socket.emit(ServerEvent.Revoked, { reason: 'token_expired' });
      socket.disconnect(true);
    }, Math.max(0, Math.min(auth.expiresAt - this.clock.now(), 2 ** 31 - 1)));
  }

  typing(items: TypingItem[]): void {
    for (const { to, from, fromDeviceId, state, gid } of items) {
      this.registry.byDevice.get(to)?.socket.emit(ServerEvent.Typing, { from, fromDeviceId, state, ...(gid !== undefined ? { gid } : {}) });
    }
  }

  private onDevicesChanged(msg: DevicesChangedMessage): void {
    for (const conn of this.registry.byDevice.values()) {
      if (conn.auth.accountId.toString('hex') !== msg.account) continue;
      if (msg.removed.includes(conn.auth.deviceId)) {
        conn.socket.emit(ServerEvent.Revoked, { reason: 'device_removed' });
        conn.socket.disconnect(true);
      } else {
        conn.socket.emit(ServerEvent.DevicesChanged, { accountId: conn.auth.accountIdText, listVersion: msg.listVersion });
      }
    }
  }
}

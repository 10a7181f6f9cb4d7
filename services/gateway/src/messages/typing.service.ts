import { Inject, Injectable } from '@nestjs/common';
import { decodeAccountId } from '@umbra/crypto';
import type { TypingRequest, TypingResult } from '@umbra/protocol';
import {
  APP_CONFIG,
  ApiError,
  Bus,
  Channels,
  PresenceStore,
  deviceKey,
  type AppConfig,
  type AuthContext,
  type GatewayMessage,
  type Publication,
  type TypingItem,
} from '@umbra/server';
import { DeviceSetsCache } from './device-sets.cache';

/**
 * Typing indicators, live only: the recipient account's connected devices are found in presence and
 * their gateways told over pub/sub. Nothing is written to Postgres or to a Redis key; a device that
 * is offline gets nothing, now or later. A group's typing is one request per member account, each
 * carrying the group id the server relays without knowing the group.
 */
@Injectable()
export class TypingService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(DeviceSetsCache) private readonly deviceSets: DeviceSetsCache,
    @Inject(PresenceStore) private readonly presence: PresenceStore,
    @Inject(Bus) private readonly bus: Bus,
  ) {}

  async typing(auth: AuthContext, req: TypingRequest): Promise<TypingResult> {
    const to = Buffer.from(decodeAccountId(req.to));
    const hex = to.toString('hex');
    const deviceIds = (await this.deviceSets.get([hex], false)).get(hex);
    if (!deviceIds) throw new ApiError('ACCOUNT_NOT_FOUND', 'no such account');
    const self = to.equals(auth.accountId);
    const items: TypingItem[] = deviceIds
      .filter((d) => !(self && d === auth.deviceId))
      .map((deviceId) => ({
        to: deviceKey({ accountId: to, deviceId }),
        from: auth.accountIdText,
        fromDeviceId: auth.deviceId,
        state: req.state,
        ...(req.gid !== undefined ? { gid: req.gid } : {}),
      }));
    const routed = await this.presence.route(items, (i) => i.to);
    const messages: Publication<GatewayMessage>[] = [];
    let devices = 0;
    for (const [gw, list] of routed) {
      devices += list.length;
      messages.push({ channel: Channels.deliver(this.config.REDIS_PREFIX, gw), message: { kind: 'typing', items: list } });
    }
    await this.bus.publishMany(messages);
    return { devices };
  }
}

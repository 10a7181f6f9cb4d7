import { Inject, Injectable } from '@nestjs/common';
import { decodeAccountId } from '@umbra/crypto';
import type { RecallRequest, RecallResult } from '@umbra/protocol';
import {
  APP_CONFIG,
  Bus,
  Channels,
  EnvelopeExpiryRepository,
  LOGGER,
  PresenceStore,
  deviceKey,
  type AppConfig,
  type AuthContext,
  type ExpiredItem,
  type GatewayMessage,
  type Logger,
  type Publication,
} from '@umbra/server';
import { SendLimiter } from './send.limiter';

/**
 * Recall before delivery: the sending device deletes the still-queued copies of one of its sends.
 * Connected recipients holding a copy in their window are told (`recalled`), best effort: one that is
 * not told finds the rows gone (its ack is ignored, a drain no longer returns them).
 */
@Injectable()
export class RecallService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(EnvelopeExpiryRepository) private readonly envelopes: EnvelopeExpiryRepository,
    @Inject(PresenceStore) private readonly presence: PresenceStore,
    @Inject(Bus) private readonly bus: Bus,
    @Inject(SendLimiter) private readonly limiter: SendLimiter,
  ) {}

  async recall(auth: AuthContext, req: RecallRequest): Promise<RecallResult> {
    await this.limiter.take(auth);
    const clientMessageId = Buffer.from(req.clientMessageId, 'base64url');
    const accounts = [...new Set(req.accountIds)].map((a) => Buffer.from(decodeAccountId(a)));
    const copies = await this.envelopes.recall({ sender: { accountId: auth.accountId, deviceId: auth.deviceId }, clientMessageId }, accounts);
    if (copies.length > 0) await this.notify(auth, clientMessageId, copies.map((c) => ({ to: deviceKey(c.recipient), seq: c.seq })));
    return { recalled: copies.length };
  }

  private async notify(auth: AuthContext, clientMessageId: Buffer, copies: { to: string; seq: string }[]): Promise<void> {
    const ref = { senderAccountId: auth.accountIdText, senderDeviceId: auth.deviceId, clientMessageId: clientMessageId.toString('base64url') };
    try {
      const routed = await this.presence.route(copies, (c) => c.to);
      const messages: Publication<GatewayMessage>[] = [];
      for (const [gw, list] of routed) {
        const items: ExpiredItem[] = list.map((c) => ({ to: c.to, ids: [c.seq], messages: [ref] }));
        messages.push({ channel: Channels.deliver(this.config.REDIS_PREFIX, gw), message: { kind: 'recalled', items } });
      }
      await this.bus.publishMany(messages);
    } catch (err) {
      this.logger.warn({ err: String(err) }, 'could not tell connected devices of a recall');
    }
  }
}

import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { DelayedError } from 'bullmq';
import { NoticeType, type ExpiredMessageRef, type ExpiryReceipt } from '@umbra/protocol';
import {
  accountIdText,
  APP_CONFIG,
  Batcher,
  Bus,
  Channels,
  DatabaseClock,
  EnvelopeExpiryRepository,
  EnvelopeStoreRepository,
  Jobs,
  LOGGER,
  Metrics,
  PresenceStore,
  QueueRegistry,
  Queues,
  deviceKey,
  fromExpireJob,
  jobHooks,
  toDeliveredEnvelope,
  type AppConfig,
  type DeliverItem,
  type ExpiredItem,
  type ExpiryOutcome,
  type GatewayMessage,
  type Publication,
  type Logger,
  type MessageKey,
} from '@umbra/server';
import { AttachmentDeleter } from './attachment.deleter';

const messageId = (m: MessageKey) => `${Buffer.from(m.sender.accountId).toString('hex')}:${m.sender.deviceId}:${Buffer.from(m.clientMessageId).toString('hex')}`;

/** Deleted copies per message and recipient account (hex), in one pass. */
function deletedPerAccount(outcome: ExpiryOutcome): Map<string, Map<string, number>> {
  const out = new Map<string, Map<string, number>>();
  for (const c of outcome.copies) {
    const id = messageId(c.message);
    let counts = out.get(id);
    if (!counts) {
      counts = new Map();
      out.set(id, counts);
    }
    const hex = Buffer.from(c.recipient.accountId).toString('hex');
    counts.set(hex, (counts.get(hex) ?? 0) + 1);
  }
  return out;
}

interface Pending {
  message: MessageKey;
  dueAt: number;
  /** `early`: how long before its time (by the database's clock) the job ran; 0 when it was due. */
  done: (early: number) => void;
  fail: (err: unknown) => void;
}

/**
 * Deletes vanishing messages when their delayed `expire-message` job fires. Jobs running at the
 * same time are coalesced into one delete per batch; the outcome (tells connected devices, expiry
 * receipts to senders, the message's attachments) is shared with the sweep.
 */
@Injectable()
export class ExpiryService implements OnModuleInit, OnModuleDestroy {
  private readonly batcher: Batcher<Pending>;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(QueueRegistry) private readonly queues: QueueRegistry,
    @Inject(EnvelopeExpiryRepository) private readonly envelopes: EnvelopeExpiryRepository,
    @Inject(EnvelopeStoreRepository) private readonly store: EnvelopeStoreRepository,
    @Inject(PresenceStore) private readonly presence: PresenceStore,
    @Inject(Bus) private readonly bus: Bus,
    @Inject(DatabaseClock) private readonly clock: DatabaseClock,
    @Inject(Metrics) private readonly metrics: Metrics,
    @Inject(AttachmentDeleter) private readonly attachments: AttachmentDeleter,
  ) {
    this.batcher = new Batcher<Pending>(
      config.EXPIRY_BATCH_MAX,
      5,
      (items) => this.expireBatch(items),
      (err, items) => items.forEach((i) => i.fail(err)),
    );
  }

  onModuleInit(): void {
    this.queues.worker(
      Queues.expiry,
      {
        [Jobs.expireMessage]: async (job, token) => {
          const data = job.data;
          const early = await new Promise<number>((done, fail) => this.batcher.add({ message: fromExpireJob(data), dueAt: data.dueAt, done, fail }));
          if (early === 0) return;
          // BullMQ ran the job by this worker's clock, which is ahead of the database's: run it again
          // when it is due, rather than leave the message to the sweep.
          await job.moveToDelayed(Date.now() + early, token);
          throw new DelayedError();
        },
      },
      { concurrency: this.config.EXPIRY_CONCURRENCY, ...jobHooks(Queues.expiry, this.metrics, this.logger) },
    );
  }

  private async expireBatch(items: Pending[]): Promise<void> {
    const now = await this.clock.now();
    const due = items.filter((i) => i.dueAt <= now);
    if (due.length > 0) {
      const outcome = await this.envelopes.expireMessages(due.map((i) => i.message), now);
      for (const i of due) this.metrics.expiryLag.observe((now - i.dueAt) / 1000);
      await this.report(outcome, now, 'job');
    }
    items.forEach((i) => i.done(Math.max(0, i.dueAt - now)));
  }

  /**
   * After a deletion: connected recipients hear "expired", senders of messages that vanished before
   * any device of a recipient account received them get an expiry receipt, and the messages'
   * attachments are deleted. Each ExpiredMessage is returned by exactly one deletion, so nothing
   * is reported twice, however many workers run.
   */
  async report(outcome: ExpiryOutcome, now: number, path: 'job' | 'sweep'): Promise<void> {
    this.metrics.messagesExpired.inc({ path }, outcome.copies.length);
    const ref = (m: MessageKey): ExpiredMessageRef => ({
      senderAccountId: accountIdText(m.sender.accountId),
      senderDeviceId: m.sender.deviceId,
      clientMessageId: Buffer.from(m.clientMessageId).toString('base64url'),
    });

    const perDevice = new Map<string, ExpiredItem>();
    for (const c of outcome.copies) {
      const to = deviceKey(c.recipient);
      let item = perDevice.get(to);
      if (!item) {
        item = { to, ids: [], messages: [] };
        perDevice.set(to, item);
      }
      item.ids.push(String(c.seq));
      item.messages.push(ref(c.message));
    }

    const notices: Parameters<EnvelopeStoreRepository['storeNotices']>[0] = [];
    const deleted = deletedPerAccount(outcome);
    for (const m of outcome.messages) {
      const counts = deleted.get(messageId(m.message));
      const unreached = Object.entries(m.recipientCounts)
        .filter(([hex, n]) => n > 0 && counts?.get(hex) === n)
        .map(([hex]) => accountIdText(Buffer.from(hex, 'hex')));
      if (unreached.length === 0) continue;
      const receipt: ExpiryReceipt = { k: 'expired', clientMessageId: Buffer.from(m.message.clientMessageId).toString('base64url'), expiresAt: m.expiresAt, accountIds: unreached };
      notices.push({ recipient: m.message.sender, clientMessageId: m.message.clientMessageId, type: NoticeType.ExpiryReceipt, content: Buffer.from(JSON.stringify(receipt)) });
    }
    const stored = await this.store.storeNotices(notices, now, this.config.MAX_RETENTION_S * 1000);
    this.metrics.expiryReceipts.inc(stored.length);

    const attachmentIds = outcome.messages.flatMap((m) => m.attachments.map((id) => ({ id, owner: m.message.sender.accountId })));
    if (attachmentIds.length > 0) await this.attachments.delete(attachmentIds, now);

    const deliver: DeliverItem[] = stored.map((e) => ({ to: deviceKey(e.recipient), envelope: toDeliveredEnvelope(e) }));
    const events: ({ kind: 'expired'; item: ExpiredItem } | { kind: 'deliver'; item: DeliverItem })[] = [
      ...[...perDevice.values()].map((item) => ({ kind: 'expired' as const, item })),
      ...deliver.map((item) => ({ kind: 'deliver' as const, item })),
    ];
    if (events.length === 0) return;
    // Best effort: a device that is not told now drains without these envelopes and gets the receipts from its queue.
    const routed = await this.presence.route(events, (e) => e.item.to).catch(() => new Map<string, typeof events>());
    const perGateway = new Map<string, { expired: ExpiredItem[]; deliver: DeliverItem[] }>();
    for (const [gw, list] of routed) {
      perGateway.set(gw, {
        expired: list.flatMap((e) => (e.kind === 'expired' ? [e.item] : [])),
        deliver: list.flatMap((e) => (e.kind === 'deliver' ? [e.item] : [])),
      });
    }
    const prefix = this.config.REDIS_PREFIX;
    const messages: Publication<GatewayMessage>[] = [];
    for (const [gw, s] of perGateway) {
      if (s.expired.length) messages.push({ channel: Channels.deliver(prefix, gw), message: { kind: 'expired', items: s.expired } });
      if (s.deliver.length) messages.push({ channel: Channels.deliver(prefix, gw), message: { kind: 'deliver', items: s.deliver } });
    }
    await this.bus.publishMany(messages).catch((err: unknown) => this.logger.warn({ err: String(err) }, 'could not publish expiry events'));
  }

  async onModuleDestroy(): Promise<void> {
    await this.batcher.drain();
  }
}

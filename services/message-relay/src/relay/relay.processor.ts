import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import type { Job } from 'bullmq';
import { DeviceIdSchema, isEnvelopeId } from '@umbra/protocol';
import {
  APP_CONFIG,
  Bus,
  Channels,
  Clock,
  DeviceQueueRepository,
  EnvelopeStoreRepository,
  ExpiryScheduler,
  Jobs,
  LOGGER,
  Metrics,
  PresenceStore,
  QueueRegistry,
  Queues,
  WakeupNotifier,
  deviceKey,
  jobHooks,
  toDeliveredEnvelope,
  withCorrelationId,
  type AckBatchJob,
  type AppConfig,
  type DeviceAddress,
  type DeliverItem,
  type GatewayMessage,
  type Publication,
  type Logger,
  type RelayBatchJob,
  type RelaySend,
  type StoreResult,
  type StoreSend,
  type StoredEnvelope,
} from '@umbra/server';

const ACCOUNT_HEX = /^[0-9a-f]{64}$/;

/**
 * Persists batches of sends (one transaction), then pushes each envelope to the gateway holding its
 * recipient's socket and answers "stored" to the sender's gateway. Deletes acknowledged envelopes.
 */
@Injectable()
export class RelayProcessor implements OnModuleInit, OnModuleDestroy {
  private sampler: NodeJS.Timeout | undefined;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(QueueRegistry) private readonly queues: QueueRegistry,
    @Inject(EnvelopeStoreRepository) private readonly envelopes: EnvelopeStoreRepository,
    @Inject(DeviceQueueRepository) private readonly deviceQueues: DeviceQueueRepository,
    @Inject(PresenceStore) private readonly presence: PresenceStore,
    @Inject(Bus) private readonly bus: Bus,
    @Inject(Clock) private readonly clock: Clock,
    @Inject(Metrics) private readonly metrics: Metrics,
    @Inject(ExpiryScheduler) private readonly expiry: ExpiryScheduler,
    @Inject(WakeupNotifier) private readonly wakeups: WakeupNotifier,
  ) {}

  onModuleInit(): void {
    const hooks = (queue: string) => jobHooks(queue, this.metrics, this.logger);
    const timed = <T>(queue: string, fn: (job: Job<T>) => Promise<void>) => async (job: Job<T>) => {
      const started = Date.now();
      this.metrics.jobWait.observe({ queue }, Math.max(0, started - job.timestamp) / 1000);
      await fn(job);
      this.metrics.jobDuration.observe({ queue }, (Date.now() - started) / 1000);
    };
    this.queues.worker(Queues.relay, { [Jobs.relayBatch]: timed(Queues.relay, (job) => this.relayBatch(job.data, String(job.id))) }, {
      concurrency: this.config.RELAY_CONCURRENCY,
      ...hooks(Queues.relay),
    });
    // Acks are deleted by the gateways now; this drains the jobs that gateways of the previous version enqueue during a rolling upgrade.
    this.queues.worker(Queues.ack, { [Jobs.ackBatch]: timed(Queues.ack, (job) => this.ackBatch(job.data)) }, { concurrency: 2, ...hooks(Queues.ack) });
    this.sampler = setInterval(() => void this.sampleQueueDepths(), 15_000);
    this.sampler.unref();
  }

  /** Queue depth per state for `umbra_queue_jobs` (every relay samples; the values are global). */
  async sampleQueueDepths(): Promise<void> {
    for (const name of [Queues.relay, Queues.ack, Queues.expiry]) {
      try {
        const counts = await this.queues.queue(name).getJobCounts('waiting', 'active', 'delayed', 'failed');
        for (const [state, n] of Object.entries(counts)) this.metrics.queueDepth.set({ queue: name, state }, n);
      } catch (err) {
        this.logger.warn({ queue: name, err: String(err) }, 'could not sample queue depth');
      }
    }
  }

  onModuleDestroy(): void {
    if (this.sampler) clearInterval(this.sampler);
  }

  async relayBatch(job: RelayBatchJob, jobId: string): Promise<void> {
    await withCorrelationId(`relay-${jobId}`, () => this.store(job));
  }

  private async store(job: RelayBatchJob): Promise<void> {
    const now = this.clock.now();
    // A vanishing send whose timer has passed is never stored. A late retry of one that was stored and
    // has expired would otherwise come back whole: its send record, the de-duplication key, went with it.
    const live = job.sends.filter((s) => s.expiresAt === 0 || s.expiresAt > now);
    const sends: StoreSend[] = live.map((s) => ({
      sender: { accountId: Buffer.from(s.senderAccount, 'hex'), deviceId: s.senderDevice },
      clientMessageId: Buffer.from(s.clientMessageId, 'base64url'),
      expiresAt: s.expiresAt,
      readTtlS: s.readTtlS,
      ...(s.attachments ? { attachments: s.attachments } : {}),
      recipients: s.recipients.map((r) => ({
        accountId: Buffer.from(r.account, 'hex'),
        deviceId: r.deviceId,
        type: r.type,
        content: Buffer.from(r.content, 'base64url'),
      })),
    }));
    const results = await this.envelopes.storeBatch(sends, now, this.config.MAX_RETENTION_S * 1000, {
      envelopes: this.config.QUEUE_MAX_ENVELOPES_PER_DEVICE,
      bytes: this.config.QUEUE_MAX_BYTES_PER_DEVICE,
    });
    const resultOf = new Map(live.map((s, i) => [s, results[i]!]));
    const stored = results.reduce((n, r) => n + r.envelopes.length, 0);
    this.metrics.messagesStored.inc(stored);
    const full = results.filter((r) => r.refused === 'QUEUE_FULL').length;
    if (full > 0) this.metrics.sendsQueueFull.inc(full);

    // A duplicate may be this job's own earlier attempt that committed and then failed to publish:
    // publish the copies still queued again (devices de-duplicate), or nobody would until a drain.
    const redeliver = await this.envelopes
      .queuedCopies(
        sends.flatMap((s, i) => (results[i]!.duplicate ? s.recipients.map((r) => ({ recipient: r, message: { sender: s.sender, clientMessageId: s.clientMessageId } })) : [])),
        now,
      )
      .catch((err: unknown) => {
        this.logger.warn({ err: String(err) }, 'could not read the stored copies of duplicate sends');
        return [];
      });
    const fresh = [...results.flatMap((r) => r.envelopes), ...redeliver].filter((e) => e.expiresAt === 0 || e.expiresAt > now);
    const routed = await this.presence.route(fresh, (e) => deviceKey(e.recipient)).catch((err: unknown) => {
      // Stored is what matters; without presence the devices get these on their next drain.
      this.logger.warn({ err: String(err) }, 'presence lookup failed');
      return new Map<string, typeof fresh>();
    });
    if (live.some((s) => s.urgent)) await this.wakeOffline(live, results, routed);
    const perGateway = new Map<string, DeliverItem[]>(
      [...routed].map(([gw, envelopes]) => [gw, envelopes.map((e) => ({ to: deviceKey(e.recipient), envelope: toDeliveredEnvelope(e) }))]),
    );
    // One delayed job per new vanishing message, before the sender hears "stored"; the sweep covers any that are lost.
    const vanishing = results
      .filter((r) => !r.duplicate && r.envelopes.length > 0 && r.envelopes[0]!.expiresAt > 0)
      .map((r) => ({ message: { sender: r.envelopes[0]!.sender!, clientMessageId: r.envelopes[0]!.clientMessageId }, dueAt: r.envelopes[0]!.deleteAt }));
    await this.expiry.schedule(vanishing, now).catch((err: unknown) => this.logger.warn({ err: String(err), messages: vanishing.length }, 'could not schedule expiry jobs'));
    const prefix = this.config.REDIS_PREFIX;
    // The sending gateway gets the deliveries for its own sockets inside its "stored" answer: one publication.
    const own = perGateway.get(job.gatewayId);
    const messages: Publication<GatewayMessage>[] = [...perGateway]
      .filter(([gw]) => gw !== job.gatewayId)
      .map(([gw, items]) => ({ channel: Channels.deliver(prefix, gw), message: { kind: 'deliver', items } }));
    messages.push({
      channel: Channels.deliver(prefix, job.gatewayId),
      message: {
        kind: 'stored',
        ...(own ? { items: own } : {}),
        results: job.sends.map((s) => {
          const r = resultOf.get(s);
          return {
            requestId: s.requestId,
            outcome: !r
              ? { ok: false, code: 'ALREADY_EXPIRED', message: 'the message vanished before it could be stored; nothing was stored' }
              : r.refused
                ? { ok: false, code: 'QUEUE_FULL', message: 'a recipient device has too many undelivered messages; nothing was stored' }
                : { ok: true, result: { clientMessageId: s.clientMessageId, serverTimestamp: r.serverTimestamp, duplicate: r.duplicate } },
          };
        }),
      },
    });
    await this.bus.publishMany(messages);
  }

  /**
   * Wakes the recipient devices of urgent sends stored now that presence found on no gateway (on a presence
   * failure: all of them). The sender's own devices (sync copies) are not woken.
   */
  private async wakeOffline(live: RelaySend[], results: StoreResult[], routed: Map<string, StoredEnvelope[]>): Promise<void> {
    const online = new Set([...routed.values()].flatMap((list) => list.map((e) => deviceKey(e.recipient))));
    const offline = new Map<string, DeviceAddress>();
    live.forEach((s, i) => {
      if (!s.urgent) return;
      for (const e of results[i]!.envelopes) {
        const key = deviceKey(e.recipient);
        if (!online.has(key) && !key.startsWith(`${s.senderAccount}:`)) offline.set(key, e.recipient);
      }
    });
    if (offline.size === 0) return;
    await this.wakeups.wake([...offline.values()], 'urgent').catch((err: unknown) => this.logger.warn({ err: String(err), devices: offline.size }, 'could not wake devices'));
  }

  /** Deletes acknowledged envelopes. Items are checked one by one: an invalid one is dropped and counted, never failing the others'. */
  async ackBatch(job: AckBatchJob): Promise<void> {
    let invalid = 0;
    const items: { recipient: DeviceAddress; seqs: string[] }[] = [];
    for (const item of Array.isArray(job?.items) ? job.items : []) {
      const seqs: unknown[] = Array.isArray(item?.seqs) ? item.seqs : [];
      if (typeof item?.account !== 'string' || !ACCOUNT_HEX.test(item.account) || !DeviceIdSchema.safeParse(item.deviceId).success) {
        invalid += Math.max(1, seqs.length);
        continue;
      }
      const valid = seqs.filter(isEnvelopeId);
      invalid += seqs.length - valid.length;
      if (valid.length > 0) items.push({ recipient: { accountId: Buffer.from(item.account, 'hex'), deviceId: item.deviceId }, seqs: valid });
    }
    if (invalid > 0) {
      this.metrics.invalidJobItems.inc({ queue: Queues.ack }, invalid);
      this.logger.warn({ invalid }, 'dropped invalid ack items');
    }
    const n = await this.deviceQueues.ack(items);
    this.metrics.messagesAcked.inc(n);
  }
}

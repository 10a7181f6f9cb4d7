import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import type { Job } from 'bullmq';
import {
  APP_CONFIG,
  Bus,
  Channels,
  Clock,
  EnvelopesRepository,
  ExpiryScheduler,
  Jobs,
  LOGGER,
  Metrics,
  PresenceStore,
  QueueRegistry,
  Queues,
  deviceKey,
  jobHooks,
  toDeliveredEnvelope,
  withCorrelationId,
  type AckBatchJob,
  type AppConfig,
  type DeliverItem,
  type GatewayMessage,
  type Logger,
  type RelayBatchJob,
  type StoreSend,
} from '@umbra/server';

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
    @Inject(EnvelopesRepository) private readonly envelopes: EnvelopesRepository,
    @Inject(PresenceStore) private readonly presence: PresenceStore,
    @Inject(Bus) private readonly bus: Bus,
    @Inject(Clock) private readonly clock: Clock,
    @Inject(Metrics) private readonly metrics: Metrics,
    @Inject(ExpiryScheduler) private readonly expiry: ExpiryScheduler,
  ) {}

  onModuleInit(): void {
    const hooks = (queue: string) => jobHooks(queue, this.metrics, this.logger);
    const timed = (queue: string, fn: (job: Job) => Promise<void>) => async (job: Job) => {
      const started = Date.now();
      this.metrics.jobWait.observe({ queue }, Math.max(0, started - job.timestamp) / 1000);
      await fn(job);
      this.metrics.jobDuration.observe({ queue }, (Date.now() - started) / 1000);
    };
    this.queues.worker(Queues.relay, { [Jobs.relayBatch]: timed(Queues.relay, (job) => this.relayBatch(job.data as RelayBatchJob, String(job.id))) }, {
      concurrency: this.config.RELAY_CONCURRENCY,
      ...hooks(Queues.relay),
    });
    this.queues.worker(Queues.ack, { [Jobs.ackBatch]: timed(Queues.ack, (job) => this.ackBatch(job.data as AckBatchJob)) }, { concurrency: 2, ...hooks(Queues.ack) });
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
    await withCorrelationId(`relay-${jobId}`, async () => {
      const now = this.clock.now();
      const sends: StoreSend[] = job.sends.map((s) => ({
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
      const results = await this.envelopes.storeBatch(sends, now, this.config.MAX_RETENTION_S * 1000);
      const stored = results.reduce((n, r) => n + r.envelopes.length, 0);
      this.metrics.messagesStored.inc(stored);

      const fresh = results.flatMap((r) => r.envelopes).filter((e) => e.expiresAt === 0 || e.expiresAt > now);
      const routed = await this.presence.route(fresh, (e) => deviceKey(e.recipient)).catch((err: unknown) => {
        // Stored is what matters; without presence the devices get these on their next drain.
        this.logger.warn({ err: String(err) }, 'presence lookup failed');
        return new Map<string, typeof fresh>();
      });
      const accountText = new Map<string, string>();
      const perGateway = new Map<string, DeliverItem[]>(
        [...routed].map(([gw, envelopes]) => [gw, envelopes.map((e) => ({ to: deviceKey(e.recipient), envelope: toDeliveredEnvelope(e, accountText) }))]),
      );
      // One delayed job per new vanishing message, before the sender hears "stored"; the sweep covers any that are lost.
      const vanishing = results
        .filter((r) => !r.duplicate && r.envelopes.length > 0 && r.envelopes[0]!.expiresAt > 0)
        .map((r) => ({ message: { sender: r.envelopes[0]!.sender!, clientMessageId: r.envelopes[0]!.clientMessageId }, dueAt: r.envelopes[0]!.deleteAt }));
      await this.expiry.schedule(vanishing, now).catch((err: unknown) => this.logger.warn({ err: String(err), messages: vanishing.length }, 'could not schedule expiry jobs'));
      const prefix = this.config.REDIS_PREFIX;
      const messages: { channel: string; message: GatewayMessage }[] = [...perGateway].map(([gw, items]) => ({
        channel: Channels.deliver(prefix, gw),
        message: { kind: 'deliver', items },
      }));
      messages.push({
        channel: Channels.deliver(prefix, job.gatewayId),
        message: {
          kind: 'stored',
          results: job.sends.map((s, i) => ({
            requestId: s.requestId,
            outcome: { ok: true, result: { clientMessageId: s.clientMessageId, serverTimestamp: results[i]!.serverTimestamp, duplicate: results[i]!.duplicate } },
          })),
        },
      });
      await this.bus.publishMany(messages);
    });
  }

  async ackBatch(job: AckBatchJob): Promise<void> {
    const n = await this.envelopes.ack(job.items.map((i) => ({ recipient: { accountId: Buffer.from(i.account, 'hex'), deviceId: i.deviceId }, seqs: i.seqs })));
    this.metrics.messagesAcked.inc(n);
  }
}

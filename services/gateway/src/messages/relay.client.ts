import { randomUUID } from 'node:crypto';
import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import type { SendResult } from '@umbra/protocol';
import {
  APP_CONFIG,
  ApiError,
  Batcher,
  Bus,
  Channels,
  Jobs,
  LOGGER,
  QueueRegistry,
  Queues,
  type AppConfig,
  type GatewayMessage,
  type Logger,
  type RelaySend,
  type StoredOutcome,
} from '@umbra/server';

interface Pending {
  resolve: (r: SendResult) => void;
  reject: (e: unknown) => void;
  timer: NodeJS.Timeout;
  /** Settles (never rejects) once the send has its answer or timed out. */
  answered: Promise<void>;
  done: () => void;
}

/**
 * Hands sends to message-relay in batched BullMQ jobs and resolves each one when the relay
 * publishes its "stored" outcome back to this gateway's channel.
 */
@Injectable()
export class RelayClient implements OnModuleInit, OnModuleDestroy {
  private readonly pending = new Map<string, Pending>();
  private readonly batcher: Batcher<RelaySend>;
  private readonly listeners = new Set<(msg: GatewayMessage) => void>();

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(QueueRegistry) private readonly queues: QueueRegistry,
    @Inject(Bus) private readonly bus: Bus,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    this.batcher = new Batcher<RelaySend>(
      config.RELAY_BATCH_MAX,
      config.RELAY_BATCH_WAIT_MS,
      // A batch counts as under way until the relay answered all of it, so sends coalesce while the
      // previous batch is being stored (adaptive: none wait when idle, batches grow with load).
      async (sends) => {
        const answered = sends.map((s) => this.pending.get(s.requestId)?.answered);
        await this.queues.add(Queues.relay, Jobs.relayBatch, { gatewayId: this.config.instanceId, sends });
        await Promise.all(answered);
      },
      (err, sends) => {
        this.logger.error({ err: String(err), sends: sends.length }, 'could not enqueue relay batch');
        for (const s of sends) this.settle(s.requestId, { ok: false, code: 'UNAVAILABLE', message: 'message queue unavailable; retry' });
      },
    );
  }

  async onModuleInit(): Promise<void> {
    await this.bus.subscribe<GatewayMessage>(Channels.deliver(this.config.REDIS_PREFIX, this.config.instanceId), (msg) => {
      if (msg.kind === 'stored') for (const r of msg.results) this.settle(r.requestId, r.outcome);
      for (const l of this.listeners) l(msg);
    });
  }

  /** Everything published to this gateway's channel (deliveries included). */
  onMessage(listener: (msg: GatewayMessage) => void): void {
    this.listeners.add(listener);
  }

  submit(send: Omit<RelaySend, 'requestId'>): Promise<SendResult> {
    const requestId = randomUUID();
    return new Promise<SendResult>((resolve, reject) => {
      let done!: () => void;
      const answered = new Promise<void>((r) => (done = r));
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        done();
        reject(new ApiError('UNAVAILABLE', 'the message store did not answer in time; retry with the same clientMessageId'));
      }, this.config.RELAY_TIMEOUT_MS);
      this.pending.set(requestId, { resolve, reject, timer, answered, done });
      this.batcher.add({ ...send, requestId });
    });
  }

  private settle(requestId: string, outcome: StoredOutcome): void {
    const p = this.pending.get(requestId);
    if (!p) return;
    this.pending.delete(requestId);
    clearTimeout(p.timer);
    p.done();
    if (outcome.ok) p.resolve(outcome.result);
    else p.reject(new ApiError(outcome.code, outcome.message));
  }

  async onModuleDestroy(): Promise<void> {
    await this.batcher.drain();
    const deadline = Date.now() + Math.min(this.config.RELAY_TIMEOUT_MS, this.config.SHUTDOWN_GRACE_MS / 2);
    while (this.pending.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  }
}

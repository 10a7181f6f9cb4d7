import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { APP_CONFIG, Bus, Clock, DeviceQueueRepository, LOGGER, deviceKey, type AppConfig, type Logger } from '@umbra/server';
import { ConnectionRegistry, type Connection } from './connection.registry';
import { QueueDrainer } from './queue.drainer';

/** Devices per queue-head query. */
const CHECK_BATCH = 1000;

/**
 * Every DELIVERY_CHECK_INTERVAL_MS, and after the pub/sub subscriber resubscribed, looks for
 * queued envelopes the sockets here were never pushed, and frees windows whose envelopes were
 * deleted another way.
 */
@Injectable()
export class QueueChecker implements OnModuleInit, OnModuleDestroy {
  private timer: NodeJS.Timeout | undefined;
  private checking = false;
  private checkAllAgain = false;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(Bus) private readonly bus: Bus,
    @Inject(DeviceQueueRepository) private readonly envelopes: DeviceQueueRepository,
    @Inject(Clock) private readonly clock: Clock,
    @Inject(ConnectionRegistry) private readonly registry: ConnectionRegistry,
    @Inject(QueueDrainer) private readonly drainer: QueueDrainer,
  ) {}

  onModuleInit(): void {
    // Whatever was published while the subscriber was away is lost: look at every queue again.
    this.bus.onResubscribed(() => void this.check(true));
    this.timer = setInterval(() => void this.check(false), this.config.DELIVERY_CHECK_INTERVAL_MS);
    this.timer.unref();
  }

  /**
   * Finds queued envelopes that sockets were never pushed (a lost pub/sub message): one indexed
   * probe of each queue's head, batched. An idle socket whose head is neither in flight nor just
   * acknowledged re-drains from its head. `all` (after a resubscribe) also re-drains busy sockets.
   */
  async check(all: boolean): Promise<void> {
    if (this.checking) {
      // A re-drain of every socket asked for mid-check runs right after it.
      if (all) this.checkAllAgain = true;
      return;
    }
    this.checking = true;
    try {
      const now = Date.now();
      const idle: Connection[] = [];
      const stale: Connection[] = [];
      for (const conn of this.registry.byDevice.values()) {
        conn.window.sweep(now);
        if (conn.window.count > 0 && now - conn.window.lastAckAt >= this.config.DELIVERY_CHECK_INTERVAL_MS) stale.push(conn);
        if (!conn.draining && !conn.pending && conn.window.count === 0) idle.push(conn);
        else if (all) void this.drainer.redrainFromHead(conn);
      }
      // Nothing acknowledged on the socket for a while: envelopes deleted another way (a REST ack,
      // expiry) leave the window; those still stored stay in it, so a silent client gets no more.
      for (let i = 0; i < stale.length; i += CHECK_BATCH) {
        const batch = stale.slice(i, i + CHECK_BATCH).map((conn) => ({ conn, seqs: conn.window.inFlightIds() }));
        const stored = await this.envelopes.stillStored(batch.map((b) => ({ recipient: b.conn.auth, seqs: b.seqs })));
        const keep = new Set(stored.map((r) => `${deviceKey(r.recipient)}|${r.seq}`));
        for (const { conn, seqs } of batch) {
          for (const id of seqs) if (!keep.has(`${conn.claim.deviceKey}|${id}`)) conn.window.release(id);
          if (conn.pending) void this.drainer.drain(conn);
        }
      }
      for (let i = 0; i < idle.length; i += CHECK_BATCH) {
        const batch = idle.slice(i, i + CHECK_BATCH);
        const heads = await this.envelopes.queueHeads(batch.map((c) => c.auth), this.clock.now());
        for (const head of heads) {
          const conn = this.registry.byDevice.get(deviceKey(head.recipient));
          // After a resubscribe any queued envelope may hide behind an acknowledged head: drain them all.
          if (!conn || (!all && conn.window.known(head.seq))) continue;
          void this.drainer.redrainFromHead(conn);
        }
      }
    } catch (err) {
      this.logger.warn({ err: String(err) }, 'delivery check failed');
    } finally {
      this.checking = false;
    }
    if (this.checkAllAgain) {
      this.checkAllAgain = false;
      await this.check(true);
    }
  }

  onModuleDestroy(): void {
    if (this.timer) clearInterval(this.timer);
  }
}

import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { APP_CONFIG, LOGGER, PresenceStore, type AppConfig, type Logger } from '@umbra/server';
import { ConnectionsService } from './connections.service';
import { QueueChecker } from './queue.checker';

/**
 * Notices when Redis has lost this gateway's presence entries — its command connection is ready
 * again after a reconnect (a restart may have come back empty), or the gateway's sentinel key is
 * gone (FLUSHALL, eviction) — and re-claims every socket held here at once, then re-drains them:
 * without presence, relays publish nothing to these devices, and what was stored meanwhile would
 * otherwise wait for the next presence refresh and delivery check. While healthy it costs one
 * Redis command per PRESENCE_CHECK_INTERVAL_MS.
 */
@Injectable()
export class PresenceWatchService implements OnModuleInit, OnModuleDestroy {
  private timer: NodeJS.Timeout | undefined;
  private offReady: (() => void) | undefined;
  /** A recovery failed (Redis still unsteady) or was asked for while one ran: run it (again). */
  private owed = false;
  private recovering: Promise<void> | undefined;
  private ticking = false;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(PresenceStore) private readonly presence: PresenceStore,
    @Inject(ConnectionsService) private readonly connections: ConnectionsService,
    @Inject(QueueChecker) private readonly checker: QueueChecker,
  ) {}

  async onModuleInit(): Promise<void> {
    // Set before any socket connects, so a missing sentinel later always means lost data.
    await this.presence.heartbeat(this.config.instanceId).catch(() => undefined);
    this.offReady = this.presence.onReady(() => void this.recover('redis connection ready again'));
    this.timer = setInterval(() => void this.tick(), this.config.PRESENCE_CHECK_INTERVAL_MS);
    this.timer.unref();
  }

  /** One sentinel round trip; recovers when the sentinel was missing or a recovery is owed. */
  async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      const lost = !(await this.presence.heartbeat(this.config.instanceId));
      if (lost || this.owed) await this.recover(lost ? 'presence sentinel missing' : 'retrying');
    } catch (err) {
      this.logger.warn({ err: String(err) }, 'presence sentinel check failed');
    } finally {
      this.ticking = false;
    }
  }

  /** Re-claims every local socket's presence (compare-and-set, pipelined), then re-drains them all. */
  recover(reason: string): Promise<void> {
    if (this.recovering) {
      this.owed = true;
      return this.recovering;
    }
    this.owed = false;
    this.recovering = (async () => {
      try {
        const { reclaimed, superseded } = await this.connections.reclaimPresence();
        this.logger.warn({ reason, reclaimed, superseded }, 'presence re-claimed');
        await this.checker.check(true);
      } catch (err) {
        this.owed = true;
        this.logger.warn({ reason, err: String(err) }, 'presence re-claim failed; retrying');
      } finally {
        this.recovering = undefined;
      }
    })();
    return this.recovering;
  }

  async onModuleDestroy(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.offReady?.();
    await this.recovering;
    await this.presence.dropHeartbeat(this.config.instanceId).catch(() => undefined);
  }
}

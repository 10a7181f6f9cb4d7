import type { Channel, Publication } from './channels';
import type { Redis } from './redis';

/** How often the Bus checks that Redis still holds every subscription it should have. */
export const DEFAULT_BUS_AUDIT_INTERVAL_MS = 5000;

/**
 * Typed JSON pub/sub. Pub/sub is lossy: whatever was published while a subscription was being
 * restored is gone, so listeners of `onResubscribed` re-read what they may have missed from the
 * store. NodeBus runs on one Redis, ShardedBus on a Redis Cluster.
 */
export abstract class Bus {
  abstract publish<T>(channel: Channel<T>, message: T): Promise<void>;
  /** Publishes several messages in as few round trips as the deployment allows. */
  abstract publishMany<T>(messages: readonly Publication<T>[]): Promise<void>;
  /** Resolves once the channel is subscribed. */
  abstract subscribe<T>(channel: Channel<T>, handler: (msg: T) => void): Promise<void>;
  /** Called after a subscription was restored (reconnect, failover, or found missing). */
  abstract onResubscribed(listener: () => void): void;
  /** Whether Redis, when last asked, held every subscription this Bus needs (readiness). */
  abstract isComplete(): boolean;
  /** Checks that Redis holds every subscription; restores the missing ones and returns how many were. */
  abstract auditSubscriptions(): Promise<number>;
  abstract unsubscribeAll(): Promise<void>;
}

/** Adds a handler to a channel's set (creating it). */
export function addHandler(handlers: Map<string, Set<(msg: unknown) => void>>, channel: string, handler: (msg: unknown) => void): void {
  let set = handlers.get(channel);
  if (!set) {
    set = new Set();
    handlers.set(channel, set);
  }
  set.add(handler);
}

/** Hands one raw pub/sub message to the channel's handlers; a bad payload or a throwing handler goes to onError. */
export function dispatchMessage(handlers: Set<(msg: unknown) => void> | undefined, raw: string, onError: (err: unknown) => void): void {
  if (!handlers) return;
  let msg: unknown;
  try {
    msg = JSON.parse(raw);
  } catch (err) {
    onError(err);
    return;
  }
  for (const h of handlers) {
    try {
      h(msg);
    } catch (err) {
      onError(err);
    }
  }
}

/**
 * Typed JSON pub/sub over one publisher and one subscriber connection. Pub/sub is lossy: whatever
 * was published while the subscriber was reconnecting is gone, so listeners of `onResubscribed`
 * re-read what they may have missed from the store.
 *
 * The Bus, not ioredis, owns the subscriptions (the subscriber connection is created with
 * `autoResubscribe: false`): SUBSCRIBE is sent only once the connection is ready, again on every
 * ready, and an audit compares what Redis reports for this connection (`CLIENT LIST ID`) with what
 * the Bus should hold. ioredis's own resubscribe raced its ready check: a gateway could come up
 * subscribed to one of its three channels, and every "stored" answer published to it was dropped
 * until Redis restarted — the liveness stall the fault-injection suite found.
 */
export class NodeBus extends Bus {
  private readonly handlers = new Map<string, Set<(msg: unknown) => void>>();
  private readonly resubscribed = new Set<() => void>();
  private subscribing: Promise<void> | undefined;
  private subscribeOwed = false;
  private clientId: string | undefined;
  private readyOnce = false;
  private audit: NodeJS.Timeout | undefined;
  private auditing = false;
  /** SUBSCRIBEs sent by `subscribe` and not yet answered: the audit waits for them. */
  private direct = 0;
  /** False from the moment a subscription is known to be missing until it is restored. */
  private complete = true;

  constructor(
    private readonly pub: Redis,
    private readonly sub: Redis,
    private readonly onError: (err: unknown, channel: string) => void,
    opts: { auditIntervalMs?: number; onRepaired?: (missing: number) => void } = {},
  ) {
    super();
    this.onRepaired = opts.onRepaired;
    this.sub.on('ready', () => {
      const again = this.readyOnce;
      this.readyOnce = true;
      this.clientId = undefined;
      void this.subscribeAll(again);
    });
    if (this.sub.status === 'ready') {
      this.readyOnce = true;
      void this.subscribeAll(false);
    }
    this.sub.on('message', (channel: string, raw: string) => dispatchMessage(this.handlers.get(channel), raw, (err) => this.onError(err, channel)));
    const every = opts.auditIntervalMs ?? DEFAULT_BUS_AUDIT_INTERVAL_MS;
    if (every > 0) {
      this.audit = setInterval(() => void this.auditSubscriptions(), every);
      this.audit.unref();
    }
  }

  private readonly onRepaired: ((missing: number) => void) | undefined;

  async publish<T>(channel: Channel<T>, message: T): Promise<void> {
    await this.pub.publish(channel, JSON.stringify(message));
  }

  /** Publishes several messages in one round trip. */
  async publishMany<T>(messages: readonly Publication<T>[]): Promise<void> {
    if (messages.length === 0) return;
    const pipeline = this.pub.pipeline();
    for (const m of messages) pipeline.publish(m.channel, JSON.stringify(m.message));
    await pipeline.exec();
  }

  /** Resolves once the channel is subscribed (at once when the connection is ready; else when it is). */
  async subscribe<T>(channel: Channel<T>, handler: (msg: T) => void): Promise<void> {
    addHandler(this.handlers, channel, handler as (msg: unknown) => void);
    if (this.sub.status !== 'ready') return this.whenSubscribed();
    this.direct++;
    try {
      await this.sub.subscribe(channel);
    } finally {
      this.direct--;
    }
  }

  /** Called after the subscriber reconnected (or lost a subscription) and every channel is subscribed again. */
  onResubscribed(listener: () => void): void {
    this.resubscribed.add(listener);
  }

  /** Whether Redis, when last asked, held every subscription this Bus needs (readiness). */
  isComplete(): boolean {
    return this.complete;
  }

  /** Checks this connection's subscription count in Redis; re-subscribes and notifies when one is missing. */
  async auditSubscriptions(): Promise<number> {
    if (this.auditing || this.direct > 0 || this.sub.status !== 'ready' || this.subscribing || this.handlers.size === 0) return 0;
    this.auditing = true;
    try {
      if (!this.complete) {
        // The last SUBSCRIBE failed: try again.
        await this.subscribeAll(true);
        return 0;
      }
      if (this.clientId === undefined) return 0;
      const line = String(await this.pub.client('LIST', 'ID', this.clientId));
      const held = Number(/\bsub=(\d+)/.exec(line)?.[1] ?? 0);
      const missing = this.handlers.size - held;
      if (missing <= 0) {
        this.complete = true;
        return 0;
      }
      this.complete = false;
      this.onRepaired?.(missing);
      await this.subscribeAll(true);
      return missing;
    } catch (err) {
      this.onError(err, 'audit');
      return 0;
    } finally {
      this.auditing = false;
    }
  }

  private whenSubscribed(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.resubscribed.delete(done);
        this.firstSubscribed.delete(done);
        resolve();
      };
      this.firstSubscribed.add(done);
      this.resubscribed.add(done);
    });
  }

  private readonly firstSubscribed = new Set<() => void>();

  /**
   * SUBSCRIBE to every channel and await the replies, so the channels are live before listeners
   * re-read the store. One at a time: a ready during a run re-runs it once that run ends.
   */
  private subscribeAll(notify: boolean): Promise<void> {
    if (this.subscribing) {
      this.subscribeOwed = true;
      return this.subscribing;
    }
    this.subscribing = (async () => {
      let ok = false;
      try {
        // Asked before SUBSCRIBE: in subscriber mode (RESP2) the connection can no longer answer it.
        if (this.clientId === undefined) {
          const subscribed = this.sub.mode === 'subscriber';
          if (!subscribed) this.clientId = String(await this.sub.client('ID'));
        }
        const channels = [...this.handlers.keys()];
        if (channels.length > 0) await this.sub.subscribe(...channels);
        this.complete = true;
        ok = true;
      } catch (err) {
        this.complete = false;
        this.onError(err, 'resubscribe');
      } finally {
        this.subscribing = undefined;
      }
      if (this.subscribeOwed) {
        this.subscribeOwed = false;
        return this.subscribeAll(notify);
      }
      if (!ok) return;
      for (const l of [...this.firstSubscribed]) l();
      if (!notify) return;
      for (const l of [...this.resubscribed]) {
        try {
          l();
        } catch (err) {
          this.onError(err, 'resubscribe');
        }
      }
    })();
    return this.subscribing;
  }

  async unsubscribeAll(): Promise<void> {
    if (this.audit) clearInterval(this.audit);
    const channels = [...this.handlers.keys()];
    this.handlers.clear();
    if (channels.length > 0) await this.sub.unsubscribe(...channels).catch(() => undefined);
  }
}

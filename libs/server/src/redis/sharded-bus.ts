import { Bus, DEFAULT_BUS_AUDIT_INTERVAL_MS, addHandler, dispatchMessage } from './bus';
import type { Channel, Publication } from './channels';
import { keySlot } from './key-slot';
import type { Cluster, Redis, RedisNode } from './redis';

/** While a subscription's connection is down, how often the cluster's slot map is asked whether its slot moved (failover). */
const RELOCATE_CHECK_MS = 500;

/** One shard channel, subscribed on its own connection to the master serving the channel's slot. */
interface Link {
  readonly channel: string;
  readonly slot: number;
  /** "host:port" of the node the connection goes to; undefined until the slot map is known. */
  node: string | undefined;
  conn: Redis | undefined;
  clientId: string | undefined;
  subscribed: boolean;
  subscribedOnce: boolean;
  waiting: (() => void)[];
  watch: NodeJS.Timeout | undefined;
  relocating: boolean;
}

/**
 * The Bus on a Redis Cluster: sharded pub/sub (SPUBLISH / SSUBSCRIBE, Redis ≥ 7), so a message goes
 * only to the shard serving its channel's slot, and a gateway's connection sees only its own
 * channels. Each channel has a connection of its own to that shard's master; the Bus, not ioredis,
 * holds the subscription, with NodeBus's rules: SSUBSCRIBE on every ready, an audit that asks the
 * node (`CLIENT LIST ID`, field `ssub`) whether the connection still holds it, and `onResubscribed`
 * after every restore so listeners re-read the store. When the connection drops or the slot map
 * names another master (a failover), the subscription moves to the slot's new master.
 */
export class ShardedBus extends Bus {
  private readonly handlers = new Map<string, Set<(msg: unknown) => void>>();
  private readonly links = new Map<string, Link>();
  private readonly resubscribed = new Set<() => void>();
  private readonly onRepaired: ((missing: number) => void) | undefined;
  private readonly audit: NodeJS.Timeout | undefined;
  private auditing = false;
  private complete = true;
  private closed = false;

  constructor(
    private readonly cluster: Cluster,
    /** A subscriber connection (createRedis kind `subscriber`) to one node. */
    private readonly connect: (node: RedisNode) => Redis,
    private readonly onError: (err: unknown, channel: string) => void,
    opts: { auditIntervalMs?: number; onRepaired?: (missing: number) => void } = {},
  ) {
    super();
    this.onRepaired = opts.onRepaired;
    const every = opts.auditIntervalMs ?? DEFAULT_BUS_AUDIT_INTERVAL_MS;
    if (every > 0) {
      this.audit = setInterval(() => void this.auditSubscriptions(), every);
      this.audit.unref();
    }
  }

  async publish<T>(channel: Channel<T>, message: T): Promise<void> {
    await this.cluster.spublish(channel, JSON.stringify(message));
  }

  /** One pipeline per channel (a cluster pipeline must stay within one slot), all sent at once. */
  async publishMany<T>(messages: readonly Publication<T>[]): Promise<void> {
    const byChannel = new Map<string, string[]>();
    for (const m of messages) {
      const raw = JSON.stringify(m.message);
      const list = byChannel.get(m.channel);
      if (list) list.push(raw);
      else byChannel.set(m.channel, [raw]);
    }
    await Promise.all(
      [...byChannel].map(([channel, raws]) => {
        const pipeline = this.cluster.pipeline();
        for (const raw of raws) pipeline.spublish(channel, raw);
        return pipeline.exec();
      }),
    );
  }

  async subscribe<T>(channel: Channel<T>, handler: (msg: T) => void): Promise<void> {
    addHandler(this.handlers, channel, handler as (msg: unknown) => void);
    let link = this.links.get(channel);
    if (!link) {
      link = { channel, slot: keySlot(channel), node: undefined, conn: undefined, clientId: undefined, subscribed: false, subscribedOnce: false, waiting: [], watch: undefined, relocating: false };
      this.links.set(channel, link);
      void this.place(link);
    }
    if (link.subscribed) return;
    const pending = link;
    await new Promise<void>((resolve) => pending.waiting.push(resolve));
  }

  onResubscribed(listener: () => void): void {
    this.resubscribed.add(listener);
  }

  isComplete(): boolean {
    return this.complete && [...this.links.values()].every((l) => l.subscribed);
  }

  /** Moves subscriptions whose slot changed master, and re-subscribes those the node no longer holds. */
  async auditSubscriptions(): Promise<number> {
    if (this.auditing || this.closed || this.cluster.status !== 'ready') return 0;
    this.auditing = true;
    let missing = 0;
    try {
      for (const link of this.links.values()) {
        if (!link.subscribed) {
          // One still on its first SSUBSCRIBE is not missing yet (isComplete says it is not held).
          if (link.subscribedOnce) missing++;
          this.watch(link);
          continue;
        }
        const owner = this.cluster.slots[link.slot]?.[0];
        if (owner && owner !== link.node) {
          missing++;
          await this.relocate(link);
          continue;
        }
        if (!(await this.held(link))) {
          missing++;
          link.subscribed = false;
          await this.ssubscribe(link);
        }
      }
      this.complete = missing === 0;
      if (missing > 0) this.onRepaired?.(missing);
      return missing;
    } catch (err) {
      this.onError(err, 'audit');
      return 0;
    } finally {
      this.auditing = false;
    }
  }

  async unsubscribeAll(): Promise<void> {
    this.closed = true;
    if (this.audit) clearInterval(this.audit);
    this.handlers.clear();
    for (const link of this.links.values()) {
      if (link.watch) clearInterval(link.watch);
      link.conn?.disconnect();
    }
    this.links.clear();
  }

  /** Whether the node serving the link still reports its connection holding the channel. */
  private async held(link: Link): Promise<boolean> {
    if (link.clientId === undefined) return true;
    const node = this.cluster.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === link.node);
    if (!node) return true;
    const line = String(await node.client('LIST', 'ID', link.clientId));
    return Number(/\bssub=(\d+)/.exec(line)?.[1] ?? 0) > 0;
  }

  /** Connects the link to the master of its slot, once the cluster knows its slot map. */
  private async place(link: Link): Promise<void> {
    if (this.cluster.status !== 'ready') await new Promise<void>((resolve) => this.cluster.once('ready', () => resolve()));
    if (this.closed) return;
    const owner = this.cluster.slots[link.slot]?.[0];
    if (!owner) {
      this.watch(link);
      return;
    }
    this.attach(link, owner);
  }

  private attach(link: Link, node: string): void {
    link.conn?.removeAllListeners();
    link.conn?.disconnect();
    link.node = node;
    link.subscribed = false;
    link.clientId = undefined;
    const cut = node.lastIndexOf(':');
    const conn = this.connect({ host: node.slice(0, cut), port: Number(node.slice(cut + 1)) });
    link.conn = conn;
    conn.on('error', () => undefined);
    conn.on('ready', () => {
      link.clientId = undefined;
      void this.ssubscribe(link);
    });
    conn.on('close', () => {
      link.subscribed = false;
      this.watch(link);
    });
    conn.on('smessage', (channel: string, raw: string) => this.dispatch(channel, raw));
    if (conn.status === 'ready') void this.ssubscribe(link);
  }

  /** Re-attaches the link when the slot map names another master; true when it did. */
  private async relocate(link: Link, hint?: string): Promise<boolean> {
    if (link.relocating) return false;
    link.relocating = true;
    try {
      if (!hint) await new Promise<void>((resolve) => this.cluster.refreshSlotsCache(() => resolve()));
      const owner = hint ?? this.cluster.slots[link.slot]?.[0];
      if (this.closed || !owner || (owner === link.node && link.conn)) return false;
      this.attach(link, owner);
      return true;
    } finally {
      link.relocating = false;
    }
  }

  /** Until the link is subscribed again, checks every RELOCATE_CHECK_MS whether its slot moved. */
  private watch(link: Link): void {
    if (link.watch || this.closed) return;
    link.watch = setInterval(() => {
      if (link.subscribed || this.closed) {
        clearInterval(link.watch);
        link.watch = undefined;
        return;
      }
      void this.relocate(link).catch((err: unknown) => this.onError(err, 'relocate'));
    }, RELOCATE_CHECK_MS);
    link.watch.unref();
  }

  private async ssubscribe(link: Link): Promise<void> {
    const conn = link.conn;
    if (!conn || conn.status !== 'ready') return;
    try {
      // Asked before SSUBSCRIBE: in subscriber mode (RESP2) the connection can no longer answer it.
      if (link.clientId === undefined && conn.mode !== 'subscriber') link.clientId = String(await conn.client('ID'));
      await conn.ssubscribe(link.channel);
      if (conn !== link.conn) return;
      link.subscribed = true;
      const again = link.subscribedOnce;
      link.subscribedOnce = true;
      for (const w of link.waiting.splice(0)) w();
      if (again) this.notifyResubscribed();
    } catch (err) {
      const moved = /^MOVED \d+ (\S+)/.exec(err instanceof Error ? err.message : '');
      if (moved && conn === link.conn) {
        this.watch(link);
        await this.relocate(link, moved[1]);
      } else this.onError(err, 'resubscribe');
    }
  }

  private notifyResubscribed(): void {
    for (const l of [...this.resubscribed]) {
      try {
        l();
      } catch (err) {
        this.onError(err, 'resubscribe');
      }
    }
  }

  private dispatch(channel: string, raw: string): void {
    dispatchMessage(this.handlers.get(channel), raw, (err) => this.onError(err, channel));
  }
}

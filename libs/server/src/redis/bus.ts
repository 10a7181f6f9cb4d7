import type { Redis } from './redis';

/** Typed JSON pub/sub over one publisher and one subscriber connection. */
export class Bus {
  private readonly handlers = new Map<string, Set<(msg: unknown) => void>>();

  constructor(
    private readonly pub: Redis,
    private readonly sub: Redis,
    private readonly onError: (err: unknown, channel: string) => void,
  ) {
    this.sub.on('message', (channel: string, raw: string) => {
      const set = this.handlers.get(channel);
      if (!set) return;
      let msg: unknown;
      try {
        msg = JSON.parse(raw);
      } catch (err) {
        this.onError(err, channel);
        return;
      }
      for (const h of set) {
        try {
          h(msg);
        } catch (err) {
          this.onError(err, channel);
        }
      }
    });
  }

  async publish<T>(channel: string, message: T): Promise<void> {
    await this.pub.publish(channel, JSON.stringify(message));
  }

  /** Publishes several messages in one round trip. */
  async publishMany(messages: { channel: string; message: unknown }[]): Promise<void> {
    if (messages.length === 0) return;
    const pipeline = this.pub.pipeline();
    for (const m of messages) pipeline.publish(m.channel, JSON.stringify(m.message));
    await pipeline.exec();
  }

  async subscribe<T>(channel: string, handler: (msg: T) => void): Promise<void> {
    let set = this.handlers.get(channel);
    if (!set) {
      set = new Set();
      this.handlers.set(channel, set);
      await this.sub.subscribe(channel);
    }
    set.add(handler as (msg: unknown) => void);
  }

  async unsubscribeAll(): Promise<void> {
    const channels = [...this.handlers.keys()];
    this.handlers.clear();
    if (channels.length > 0) await this.sub.unsubscribe(...channels).catch(() => undefined);
  }
}

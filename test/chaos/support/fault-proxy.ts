import net from 'node:net';

/**
 * A TCP proxy with toxiproxy's toxics, for putting faults between the services and Redis or
 * Postgres: latency (every chunk held back, order kept), blackhole (toxiproxy's `timeout`: nothing
 * gets through, connections close after a timeout), reset (`reset_peer`: every open connection gets
 * a TCP RST) and slow close (`slow_close`: when one side closes, the other is closed only later).
 * Toxics apply in both directions and to connections opened while they are active.
 */
export interface FaultProxy {
  readonly port: number;
  readonly name: string;
  /** Open client connections (each with its upstream pair). */
  connections(): number;
  latency(ms: number): void;
  /** Drop everything; close every connection (open now or opened meanwhile) `closeAfterMs` after it was blackholed. */
  blackhole(closeAfterMs: number): void;
  /** RST every open connection now. */
  reset(): void;
  slowClose(ms: number): void;
  /** Remove every toxic (connections broken by a blackhole stay closed). */
  heal(): void;
  close(): Promise<void>;
}

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
  timers: Set<NodeJS.Timeout>;
  blackholeTimer?: NodeJS.Timeout;
}

export function startFaultProxy(opts: { name: string; target: { host: string; port: number }; port?: number; host?: string }): Promise<FaultProxy> {
  const host = opts.host ?? '127.0.0.1';
  const pairs = new Set<Pair>();
  const toxics = { latencyMs: 0, blackholeCloseMs: -1, slowCloseMs: 0 };

  const destroyPair = (p: Pair, hard: boolean) => {
    for (const t of p.timers) clearTimeout(t);
    p.timers.clear();
    if (p.blackholeTimer) clearTimeout(p.blackholeTimer);
    for (const s of [p.client, p.upstream]) {
      if (hard && !s.destroyed && !s.connecting) s.resetAndDestroy();
      else s.destroy();
    }
    pairs.delete(p);
  };

  const armBlackhole = (p: Pair) => {
    if (toxics.blackholeCloseMs < 0 || p.blackholeTimer) return;
    p.blackholeTimer = setTimeout(() => destroyPair(p, false), toxics.blackholeCloseMs);
  };

  const later = (p: Pair, ms: number, fn: () => void) => {
    const t = setTimeout(() => {
      p.timers.delete(t);
      fn();
    }, ms);
    p.timers.add(t);
  };

  /** One direction: chunks leave in arrival order, each no earlier than its latency allows. */
  const forward = (p: Pair, from: net.Socket, to: net.Socket) => {
    const queue: { at: number; chunk: Buffer | null }[] = [];
    let draining = false;
    const drain = () => {
      draining = false;
      const now = Date.now();
      while (queue.length > 0 && queue[0]!.at <= now) {
        const { chunk } = queue.shift()!;
        if (to.destroyed) continue;
        if (chunk) to.write(chunk);
        else to.end();
      }
      if (queue.length > 0) {
        draining = true;
        later(p, queue[0]!.at - now, drain);
      }
    };
    const push = (chunk: Buffer | null, delay: number) => {
      const last = queue.length > 0 ? queue[queue.length - 1]!.at : 0;
      queue.push({ at: Math.max(Date.now() + delay, last), chunk });
      if (!draining) drain();
    };
    from.on('data', (chunk: Buffer) => {
      if (toxics.blackholeCloseMs >= 0) return; // dropped, as on a dead link
      push(chunk, toxics.latencyMs);
    });
    from.on('end', () => push(null, Math.max(toxics.latencyMs, toxics.slowCloseMs)));
    from.on('close', () => {
      const wait = Math.max(toxics.slowCloseMs, queue.length > 0 ? queue[queue.length - 1]!.at - Date.now() + 5 : 0);
      if (wait > 0) later(p, wait, () => destroyPair(p, false));
      else destroyPair(p, false);
    });
    from.on('error', () => undefined);
  };

  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    client.pause();
    const upstream = net.connect({ port: opts.target.port, host: opts.target.host, allowHalfOpen: true });
    const p: Pair = { client, upstream, timers: new Set() };
    pairs.add(p);
    upstream.on('connect', () => client.resume());
    forward(p, client, upstream);
    forward(p, upstream, client);
    armBlackhole(p);
  });

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      const port = (server.address() as net.AddressInfo).port;
      resolve({
        port,
        name: opts.name,
        connections: () => pairs.size,
        latency: (ms) => {
          toxics.latencyMs = ms;
        },
        blackhole: (closeAfterMs) => {
          toxics.blackholeCloseMs = closeAfterMs;
          for (const p of pairs) armBlackhole(p);
        },
        reset: () => {
          for (const p of [...pairs]) destroyPair(p, true);
        },
        slowClose: (ms) => {
          toxics.slowCloseMs = ms;
        },
        heal: () => {
          toxics.latencyMs = 0;
          toxics.blackholeCloseMs = -1;
          toxics.slowCloseMs = 0;
        },
        close: () =>
          new Promise<void>((done) => {
            for (const p of [...pairs]) destroyPair(p, false);
            server.close(() => done());
          }),
      });
    });
  });
}

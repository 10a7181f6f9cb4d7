/**
 * The floor server of bench:floor (not a product, not a test): the least a server must do for the
 * delivery bench's clients, built from the same parts Umbra is built from and nothing else, so that
 * its CPU per message is what those parts cost on this machine. It speaks Umbra's socket.io frames
 * (`send` with a "stored" answer, `messages` pushes, batched `ack`s) on WS_PATH; a token is the
 * device's `accountId.deviceId` (no authentication, no validation, no limits, no expiry).
 *
 * --store none|postgres  postgres: every send is committed before its "stored" answer (sends that
 *                        arrive while a commit is under way share the next one; no wait when idle),
 *                        de-duplicated by (sender, client id, recipient); acks delete rows in 20 ms
 *                        windows; a connecting device drains its rows in pages of 1,000.
 * --workers N            N gateway processes, worker i listening on port + i (the bench spreads the
 *                        devices over them, so which one a device lands on does not depend on load).
 * --hop local|redis      redis: a recipient on another worker is found by HGET of a presence hash
 *                        and reached by PUBLISH on that worker's channel.
 * --relays N             N > 0: the card's shape. Gateways hand sends to relay processes in BullMQ
 *                        jobs (one job per batch: a batch goes at once when none is under way, the
 *                        sends arriving meanwhile make the next), a relay commits them and PUBLISHes
 *                        the "stored" answers (with the deliveries for the sender's own gateway) to
 *                        the sending gateway and the deliveries to each recipient's gateway.
 * --transport bullmq|streams  how jobs reach the relays: BullMQ (the default), or one Redis Stream
 *                        read by a consumer group (XADD; XREADGROUP up to 64 entries; XACK in one call).
 *
 * Started by floor.bench.ts with an IPC channel: it answers { type: 'ready', pids } once every
 * worker listens.
 */
import cluster from 'node:cluster';
import http from 'node:http';
import { Server, type Socket } from 'socket.io';
import { Pool } from 'pg';
import IORedis from 'ioredis';
import { Queue, Worker } from 'bullmq';
import { ClientEvent, ServerEvent, WS_PATH, type DeliveredEnvelope } from '@umbra/protocol';

interface Options {
  port: number;
  workers: number;
  store: 'none' | 'postgres';
  hop: 'local' | 'redis';
  relays: number;
  transport: 'bullmq' | 'streams';
  databaseUrl: string;
  redisUrl: string;
  prefix: string;
}

function options(argv: string[]): Options {
  const get = (k: string, d: string) => {
    const i = argv.indexOf(`--${k}`);
    return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : d;
  };
  const store = get('store', 'none');
  const hop = get('hop', 'local');
  if (store !== 'none' && store !== 'postgres') throw new Error('--store is none or postgres');
  if (hop !== 'local' && hop !== 'redis') throw new Error('--hop is local or redis');
  return {
    port: Number(get('port', '18090')),
    workers: Number(get('workers', '1')),
    store,
    hop,
    relays: Number(get('relays', '0')),
    transport: get('transport', 'bullmq') === 'streams' ? 'streams' : 'bullmq',
    databaseUrl: get('database-url', 'postgres://postgres@127.0.0.1:5432/umbra_floor'),
    redisUrl: get('redis-url', 'redis://127.0.0.1:6379'),
    prefix: get('prefix', 'floor'),
  };
}

interface SendItem {
  sender: string;
  clientMessageId: string;
  recipients: { key: string; content: string }[];
  answer: (res: unknown) => void;
}

/** A send as it travels in a relay job (no callback). */
type RelaySend = Omit<SendItem, 'answer'>;

interface Delivery {
  key: string;
  envelope: DeliveredEnvelope;
}

type ChannelMessage =
  | { kind: 'stored'; results: { sender: string; clientMessageId: string; duplicate: boolean }[]; deliveries: Delivery[] }
  | { kind: 'deliver'; deliveries: Delivery[] };

const QUEUE = 'floor-relay';
const STREAM_GROUP = 'relays';

/** Stores sends in one statement; the ids per recipient in order (undefined: a duplicate). */
async function storeSends(pool: Pool, batch: RelaySend[]): Promise<(string | undefined)[][]> {
  const recipients: string[] = [];
  const senders: string[] = [];
  const ids: string[] = [];
  const contents: string[] = [];
  for (const s of batch)
    for (const r of s.recipients) {
      recipients.push(r.key);
      senders.push(s.sender);
      ids.push(s.clientMessageId);
      contents.push(r.content);
    }
  const rows = (
    await pool.query<{ id: string; recipient: string; sender: string; client_message_id: string }>({
      name: 'floor-store',
      text: `INSERT INTO floor_envelopes (recipient, sender, client_message_id, content)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
             ON CONFLICT DO NOTHING RETURNING id, recipient, sender, client_message_id`,
      values: [recipients, senders, ids, contents],
    })
  ).rows;
  const byKey = new Map(rows.map((r) => [`${r.sender}|${r.client_message_id}|${r.recipient}`, r.id]));
  return batch.map((s) => s.recipients.map((r) => byKey.get(`${s.sender}|${s.clientMessageId}|${r.key}`)));
}

function envelope(sender: string, clientMessageId: string, content: string, id: string, at: number): DeliveredEnvelope {
  const [accountId, deviceId] = sender.split('.');
  return { id, type: 2, clientMessageId, senderAccountId: accountId!, senderDeviceId: Number(deviceId), serverTimestamp: at, expiresAt: at + 30 * 86_400_000, readTtlS: 0, content };
}

function envelopeOf(s: RelaySend, i: number, id: string, now: number): Delivery {
  const r = s.recipients[i]!;
  return { key: r.key, envelope: envelope(s.sender, s.clientMessageId, r.content, id, now) };
}

interface Conn {
  socket: Socket;
  draining: boolean;
  /** A push was skipped during a drain: run one more pass after it. */
  again: boolean;
  /** Ids of the drain page the device has not acked yet. */
  unacked: Set<string>;
  pageDone?: () => void;
}

class FloorWorker {
  private readonly conns = new Map<string, Conn>();
  private readonly pool: Pool | undefined;
  private readonly redis: IORedis | undefined;
  private readonly sub: IORedis | undefined;
  private queued: SendItem[] = [];
  private storing = false;
  private acked: string[] = [];
  private ackTimer: NodeJS.Timeout | undefined;
  private nextId = 0;
  private readonly queue: Queue | undefined;
  /** Relay path: sends waiting for their "stored" answer, by sender and client id. */
  private readonly answers = new Map<string, (duplicate: boolean) => void>();

  constructor(
    private readonly o: Options,
    private readonly workerId: string,
  ) {
    if (o.store === 'postgres') this.pool = new Pool({ connectionString: o.databaseUrl, max: 4 });
    if (o.hop === 'redis') {
      this.redis = new IORedis(o.redisUrl);
      this.sub = new IORedis(o.redisUrl);
      void this.sub.subscribe(this.channel(workerId));
      this.sub.on('message', (_ch, text: string) => this.onChannel(JSON.parse(text) as ChannelMessage));
    }
    if (o.relays > 0 && o.transport === 'bullmq') this.queue = new Queue(QUEUE, { connection: { url: o.redisUrl } as never, prefix: o.prefix });
  }

  private onChannel(msg: ChannelMessage): void {
    if (msg.kind === 'stored')
      for (const r of msg.results) {
        const k = `${r.sender}|${r.clientMessageId}`;
        this.answers.get(k)?.(r.duplicate);
        this.answers.delete(k);
      }
    for (const d of msg.deliveries) this.push(d.key, [d.envelope]);
  }

  private channel(worker: string): string {
    return `${this.o.prefix}:w:${worker}`;
  }

  listen(server: http.Server): void {
    const io = new Server(server, { path: WS_PATH, transports: ['websocket'], serveClient: false });
    io.on('connection', (socket) => {
      const key = String((socket.handshake.auth as { token?: unknown }).token ?? '');
      const conn: Conn = { socket, draining: false, again: false, unacked: new Set() };
      this.conns.set(key, conn);
      void this.redis?.hset(`${this.o.prefix}:presence`, key, this.workerId);
      socket.on(ClientEvent.Send, (payload: { clientMessageId: string; recipients: { accountId: string; deviceId: number; content: string }[] }, answer: (res: unknown) => void) => {
        const item: SendItem = {
          sender: key,
          clientMessageId: payload.clientMessageId,
          recipients: payload.recipients.map((r) => ({ key: `${r.accountId}.${r.deviceId}`, content: r.content })),
          answer,
        };
        if (this.pool) this.enqueue(item);
        else this.deliver(item, item.recipients.map(() => String(++this.nextId)));
      });
      socket.on(ClientEvent.Ack, ({ ids }: { ids: string[] }) => this.ack(conn, ids));
      socket.on('disconnect', () => {
        if (this.conns.get(key) === conn) this.conns.delete(key);
        void this.redis?.hdel(`${this.o.prefix}:presence`, key);
      });
      if (this.pool) void this.drain(key, conn);
    });
  }

  private enqueue(item: SendItem): void {
    this.queued.push(item);
    if (!this.storing) void this.flushQueued();
  }

  /** Adaptive batches: every send that arrived since the last batch began goes in the next one. */
  private async flushQueued(): Promise<void> {
    this.storing = true;
    while (this.queued.length > 0) {
      const batch = this.queued;
      this.queued = [];
      if (this.o.relays > 0) await this.relayBatch(batch);
      else {
        const ids = await storeSends(this.pool!, batch);
        batch.forEach((s, i) => this.deliver(s, ids[i]!));
      }
    }
    this.storing = false;
  }

  /** Relay path: one job per batch, under way until the relay answered every send in it. */
  private async relayBatch(batch: SendItem[]): Promise<void> {
    const answered = batch.map(
      (s) =>
        new Promise<void>((resolve) =>
          this.answers.set(`${s.sender}|${s.clientMessageId}`, (duplicate) => {
            s.answer({ ok: true, data: { clientMessageId: s.clientMessageId, serverTimestamp: Date.now(), duplicate } });
            resolve();
          }),
        ),
    );
    const sends: RelaySend[] = batch.map(({ sender, clientMessageId, recipients }) => ({ sender, clientMessageId, recipients }));
    const job = { gateway: this.workerId, sends };
    if (this.queue) await this.queue.add('relay-batch', job, { removeOnComplete: true, removeOnFail: { count: 1000 } });
    else await this.redis!.xadd(streamKey(this.o), 'MAXLEN', '~', '100000', '*', 'job', JSON.stringify(job));
    await Promise.all(answered);
  }

  /** Answers "stored", then pushes to each recipient that has an id (a duplicate has none). */
  private deliver(item: SendItem, ids: (string | undefined)[]): void {
    const now = Date.now();
    item.answer({ ok: true, data: { clientMessageId: item.clientMessageId, serverTimestamp: now, duplicate: ids.every((x) => x === undefined) } });
    ids.forEach((id, i) => {
      if (id === undefined) return;
      const d = envelopeOf(item, i, id, now);
      if (this.conns.has(d.key) || !this.redis) this.push(d.key, [d.envelope]);
      else void this.forward(d.key, d.envelope);
    });
  }

  private async forward(key: string, envelope: DeliveredEnvelope): Promise<void> {
    const worker = await this.redis!.hget(`${this.o.prefix}:presence`, key);
    if (worker && worker !== this.workerId) await this.redis!.publish(this.channel(worker), JSON.stringify({ kind: 'deliver', deliveries: [{ key, envelope }] } satisfies ChannelMessage));
  }

  private push(key: string, messages: DeliveredEnvelope[]): void {
    const conn = this.conns.get(key);
    if (!conn) return;
    if (conn.draining) {
      conn.again = true;
      return;
    }
    conn.socket.emit(ServerEvent.Messages, { messages });
  }

  private ack(conn: Conn, ids: string[]): void {
    if (!Array.isArray(ids)) return;
    if (conn.unacked.size > 0) {
      for (const id of ids) conn.unacked.delete(id);
      if (conn.unacked.size === 0) conn.pageDone?.();
    }
    if (!this.pool) return;
    for (const id of ids) this.acked.push(id);
    this.ackTimer ??= setTimeout(() => void this.deleteAcked(), 20);
  }

  private async deleteAcked(): Promise<void> {
    this.ackTimer = undefined;
    const ids = this.acked;
    this.acked = [];
    await this.pool!.query({ name: 'floor-ack', text: 'DELETE FROM floor_envelopes WHERE id = ANY($1::bigint[])', values: [ids] });
  }

  /** Sends the device's stored rows in pages of 1,000, the next page once the last one is acked. */
  private async drain(key: string, conn: Conn): Promise<void> {
    conn.draining = true;
    let after = '0';
    for (;;) {
      conn.again = false;
      const rows = (
        await this.pool!.query<{ id: string; sender: string; client_message_id: string; content: string; ts: string }>({
          name: 'floor-drain',
          text: `SELECT id, sender, client_message_id, content, (extract(epoch FROM created_at) * 1000)::bigint AS ts
                 FROM floor_envelopes WHERE recipient = $1 AND id > $2 ORDER BY id LIMIT 1000`,
          values: [key, after],
        })
      ).rows;
      if (rows.length === 0 && !conn.again) break;
      if (rows.length === 0) continue;
      after = rows[rows.length - 1]!.id;
      const messages = rows.map((r) => envelope(r.sender, r.client_message_id, r.content, r.id, Number(r.ts)));
      const acked = new Promise<void>((resolve) => (conn.pageDone = resolve));
      for (const m of messages) conn.unacked.add(m.id);
      conn.socket.emit(ServerEvent.Messages, { messages });
      await Promise.race([acked, new Promise((r) => setTimeout(r, 30_000))]);
      conn.pageDone = undefined;
      if (!conn.socket.connected) break;
    }
    conn.draining = false;
  }
}

function streamKey(o: Options): string {
  return `${o.prefix}:relay-stream`;
}

/** The relay process: stores each job's sends in one commit and publishes the outcomes per gateway. */
function startRelay(o: Options): void {
  const pool = new Pool({ connectionString: o.databaseUrl, max: 4 });
  const redis = new IORedis(o.redisUrl);
  const channel = (gateway: string) => `${o.prefix}:w:${gateway}`;
  const handle = async ({ gateway, sends }: { gateway: string; sends: RelaySend[] }): Promise<void> => {
    const ids = await storeSends(pool, sends);
    const now = Date.now();
    const deliveries: Delivery[] = [];
    sends.forEach((s, i) => ids[i]!.forEach((id, j) => id !== undefined && deliveries.push(envelopeOf(s, j, id, now))));
    const where = await Promise.all(deliveries.map((d) => redis.hget(`${o.prefix}:presence`, d.key)));
    const byGateway = new Map<string, Delivery[]>();
    deliveries.forEach((d, i) => {
      const g = where[i];
      if (g) byGateway.set(g, [...(byGateway.get(g) ?? []), d]);
    });
    const results = sends.map((s, i) => ({ sender: s.sender, clientMessageId: s.clientMessageId, duplicate: ids[i]!.every((x) => x === undefined) }));
    const stored: ChannelMessage = { kind: 'stored', results, deliveries: byGateway.get(gateway) ?? [] };
    byGateway.delete(gateway);
    await Promise.all([
      redis.publish(channel(gateway), JSON.stringify(stored)),
      ...[...byGateway].map(([g, ds]) => redis.publish(channel(g), JSON.stringify({ kind: 'deliver', deliveries: ds } satisfies ChannelMessage))),
    ]);
  };
  if (o.transport === 'streams') return void consumeStream(o, handle);
  const worker = new Worker(QUEUE, (job) => handle(job.data as { gateway: string; sends: RelaySend[] }), { connection: { url: o.redisUrl } as never, prefix: o.prefix, concurrency: 4 });
  worker.on('error', () => undefined);
}

/** A consumer of the relay stream's group: up to 64 entries per read, handled together, acked in one call. */
async function consumeStream(o: Options, handle: (job: { gateway: string; sends: RelaySend[] }) => Promise<void>): Promise<void> {
  const reader = new IORedis(o.redisUrl);
  const key = streamKey(o);
  await reader.xgroup('CREATE', key, STREAM_GROUP, '0', 'MKSTREAM').catch(() => undefined);
  const consumer = `relay-${process.pid}`;
  for (;;) {
    const res = (await reader.xreadgroup('GROUP', STREAM_GROUP, consumer, 'COUNT', 64, 'BLOCK', 1000, 'STREAMS', key, '>')) as [string, [string, string[]][]][] | null;
    const entries = res?.[0]?.[1] ?? [];
    if (entries.length === 0) continue;
    await Promise.all(entries.map(([, fields]) => handle(JSON.parse(fields[1]!) as { gateway: string; sends: RelaySend[] })));
    await reader.xack(key, STREAM_GROUP, ...entries.map(([id]) => id));
  }
}

function main(): void {
  const o = options(process.argv.slice(2));
  if (cluster.isPrimary) {
    const workers = Array.from({ length: o.workers }, (_x, i) => cluster.fork({ FLOOR_WORKER_ID: String(i) }));
    const relays = Array.from({ length: o.relays }, () => cluster.fork({ FLOOR_ROLE: 'relay' }));
    let listening = 0;
    cluster.on('listening', () => {
      if (++listening === workers.length) process.send?.({ type: 'ready', pids: [process.pid, ...workers.map((w) => w.process.pid!), ...relays.map((r) => r.process.pid!)] });
    });
    process.on('disconnect', () => {
      for (const w of [...workers, ...relays]) w.kill();
      process.exit(0);
    });
    return;
  }
  if (process.env.FLOOR_ROLE === 'relay') return startRelay(o);
  const worker = new FloorWorker(o, process.env.FLOOR_WORKER_ID ?? '0');
  const server = http.createServer();
  worker.listen(server);
  server.listen(o.port + Number(process.env.FLOOR_WORKER_ID ?? '0'), '127.0.0.1');
}

main();

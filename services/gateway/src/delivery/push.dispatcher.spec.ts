import { randomBytes } from 'node:crypto';
import { LIMITS, ServerEvent, type DeliveredEnvelope } from '@umbra/protocol';
import {
  type Bus,
  ManualClock,
  Metrics,
  strictStub,
  toDeliveredEnvelope,
  type AppConfig,
  type AuthContext,
  type DeviceQueueRepository,
  type GatewayMessage,
  type Logger,
  type PresenceStore,
  type StoredEnvelope,
  type TypingItem,
} from '@umbra/server';
import type { RelayClient } from '../messages/relay.client';
import { ConnectionRegistry, type ClientSocket } from './connection.registry';
import { ConnectionsService } from './connections.service';
import { ControlEventsService } from './control-events.service';
import { PushDispatcher } from './push.dispatcher';
import { QueueDrainer } from './queue.drainer';

const strict = strictStub;

/** A device's queue in "Postgres"; a page read can be held open so that pushes arrive mid-drain. */
class Queue {
  readonly rows: StoredEnvelope[] = [];
  private gate: Promise<void> | undefined;
  private open: (() => void) | undefined;
  reads = 0;

  store(seq: number, contentBytes = 4): DeliveredEnvelope {
    const row: StoredEnvelope = {
      seq: String(seq),
      recipient: { accountId: Buffer.alloc(32), deviceId: 1 },
      sender: null,
      clientMessageId: Buffer.alloc(16, seq),
      type: 1,
      content: Buffer.alloc(contentBytes, seq),
      serverTimestamp: 1,
      expiresAt: 0,
      readTtlS: 0,
      deleteAt: 0,
    };
    this.rows.push(row);
    return toDeliveredEnvelope(row);
  }

  hold(): void {
    this.gate = new Promise((r) => (this.open = r));
  }

  release(): void {
    this.gate = undefined;
    this.open?.();
  }

  async fetchPage(afterSeq: string, limit: number): Promise<{ envelopes: StoredEnvelope[]; more: boolean }> {
    this.reads++;
    // The read sees what was committed when it started.
    const after = this.rows.filter((r) => BigInt(r.seq) > BigInt(afterSeq));
    await this.gate;
    return { envelopes: after.slice(0, limit), more: after.length > limit };
  }
}

function setup() {
  const queue = new Queue();
  const errors: unknown[] = [];
  const typed: TypingItem[][] = [];
  let listener: ((msg: GatewayMessage) => void) | undefined;
  const metrics = new Metrics('gateway', false);
  const clock = new ManualClock(Date.now());
  const registry = new ConnectionRegistry(metrics);
  const logger = strict<Logger>({ error: (o: unknown) => void errors.push(o) });
  const drainer = new QueueDrainer(logger, strict<DeviceQueueRepository>({ fetchPage: (_r, after, limit) => queue.fetchPage(after, limit) }), clock, metrics, registry);
  const control = new ControlEventsService({} as AppConfig, strict<Bus>({}), clock, registry);
  control.typing = (items) => void typed.push(items);
  const dispatcher = new PushDispatcher(strict<RelayClient>({ onMessage: (l) => void (listener = l) }), clock, metrics, registry, drainer, control);
  dispatcher.onModuleInit();
  const presence = strict<PresenceStore>({ claim: async () => undefined, clear: async () => undefined });
  const connections = new ConnectionsService({ instanceId: 'gw-1' } as AppConfig, logger, presence, registry, drainer, control);

  const auth: AuthContext = { accountId: randomBytes(32), accountIdText: 'a', deviceId: 1, expiresAt: Date.now() + 3600_000 };
  const to = `${auth.accountId.toString('hex')}:1`;
  const events: [string, unknown][] = [];
  const socket = {
    id: 'sock-1',
    connected: true,
    data: { auth },
    emit: (event: string, payload: unknown) => void events.push([event, payload]),
    disconnect: () => undefined,
  } as unknown as ClientSocket;

  const publish = (msg: GatewayMessage) => listener!(msg);
  const deliver = (...envelopes: DeliveredEnvelope[]) => publish({ kind: 'deliver', items: envelopes.map((envelope) => ({ to, envelope })) });
  /** The ids of every `messages` frame, in the order they were emitted. */
  const frames = () => events.filter(([e]) => e === ServerEvent.Messages).map(([, p]) => (p as { messages: DeliveredEnvelope[] }).messages.map((m) => m.id));
  const count = (event: string) => events.filter(([e]) => e === event).length;
  const settle = () => new Promise((r) => setImmediate(r));
  return { queue, errors, typed, registry, connections, socket, auth, to, events, publish, deliver, frames, count, settle };
}

describe('PushDispatcher with QueueDrainer (strict stubs)', () => {
  let t: ReturnType<typeof setup>;
  beforeEach(() => (t = setup()));
  afterEach(() => {
    t.connections.disconnect(t.socket);
    expect(t.errors).toEqual([]);
  });

  it('a push arriving while the connect drain runs never overtakes it: the drain brings it after what it read', async () => {
    t.queue.store(1);
    t.queue.store(2);
    t.queue.hold();
    const connected = t.connections.connect(t.socket, t.auth);
    await t.settle();
    t.deliver(t.queue.store(3));
    expect(t.frames()).toEqual([]);
    t.queue.release();
    await connected;
    expect(t.frames()).toEqual([['1', '2'], ['3']]);
    expect(t.count(ServerEvent.QueueEmpty)).toBe(1);

    // Idle, with room: pushed live at once, and queue-empty is not sent again.
    t.deliver(t.queue.store(4));
    expect(t.frames()).toEqual([['1', '2'], ['3'], ['4']]);
    await t.settle();
    expect(t.count(ServerEvent.QueueEmpty)).toBe(1);
  });

  it('a push that does not fit the window stays in Postgres until an ack makes room, and nothing is pushed twice', async () => {
    await t.connections.connect(t.socket, t.auth);
    t.deliver(t.queue.store(1, LIMITS.DELIVERY_WINDOW_BYTES));
    t.deliver(t.queue.store(2));
    await t.settle();
    expect(t.frames()).toEqual([['1']]);
    const reads = t.queue.reads;

    // The ack deletes row 1 later; the drain skips it as just acknowledged.
    t.connections.acked(t.socket, ['1']);
    await t.settle();
    expect(t.frames()).toEqual([['1'], ['2']]);
    expect(t.queue.reads).toBeGreaterThan(reads);
    expect(t.count(ServerEvent.QueueEmpty)).toBe(1);

    t.deliver(t.queue.store(3));
    expect(t.frames()).toEqual([['1'], ['2'], ['3']]);
  });

  it('a full window stops the drain; only an ack restarts it', async () => {
    for (let seq = 1; seq <= LIMITS.DELIVERY_WINDOW_MESSAGES + 1; seq++) t.queue.store(seq);
    await t.connections.connect(t.socket, t.auth);
    expect(t.frames().flat()).toHaveLength(LIMITS.DELIVERY_WINDOW_MESSAGES);
    expect(t.count(ServerEvent.QueueEmpty)).toBe(0);

    t.deliver(t.queue.store(LIMITS.DELIVERY_WINDOW_MESSAGES + 2));
    await t.settle();
    expect(t.frames().flat()).toHaveLength(LIMITS.DELIVERY_WINDOW_MESSAGES);

    t.connections.acked(t.socket, ['1', '2']);
    await t.settle();
    expect(t.frames().at(-1)).toEqual([String(LIMITS.DELIVERY_WINDOW_MESSAGES + 1), String(LIMITS.DELIVERY_WINDOW_MESSAGES + 2)]);
    expect(t.count(ServerEvent.QueueEmpty)).toBe(1);
  });

  it('pushes the deliveries carried in a "stored" answer, and skips those already expired', async () => {
    await t.connections.connect(t.socket, t.auth);
    const expired = { ...t.queue.store(1), expiresAt: 1 };
    const live = t.queue.store(2);
    t.publish({ kind: 'stored', results: [], items: [{ to: t.to, envelope: expired }, { to: t.to, envelope: live }, { to: 'other:1', envelope: live }] });
    expect(t.frames()).toEqual([['2']]);
  });

  it('expired and recalled envelopes leave the window and are forwarded; typing goes to the control events', async () => {
    await t.connections.connect(t.socket, t.auth);
    t.deliver(t.queue.store(1, LIMITS.DELIVERY_WINDOW_BYTES));
    t.publish({ kind: 'expired', items: [{ to: t.to, ids: ['1'], messages: [] }] });
    expect(t.events.at(-1)).toEqual([ServerEvent.Expired, { ids: ['1'], messages: [] }]);
    t.deliver(t.queue.store(2, LIMITS.DELIVERY_WINDOW_BYTES));
    expect(t.frames()).toEqual([['1'], ['2']]);
    t.publish({ kind: 'recalled', items: [{ to: t.to, ids: ['2'], messages: [] }] });
    expect(t.events.at(-1)).toEqual([ServerEvent.Recalled, { ids: ['2'], messages: [] }]);
    expect(t.registry.byDevice.get(t.to)!.window.count).toBe(0);

    const typing = [{ to: t.to, from: 'b', fromDeviceId: 2 }] as TypingItem[];
    t.publish({ kind: 'typing', items: typing });
    expect(t.typed).toEqual([typing]);
  });
});

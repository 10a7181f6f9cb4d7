import { randomBytes } from 'node:crypto';
import type { Socket } from 'socket.io-client';
import { MemoryStore, UmbraClient } from '@umbra/sdk';
import { ServerEvent, type DeliveredEnvelope } from '@umbra/protocol';
import type { DeviceKey, History, SendOp } from './history';

/**
 * SDK-shaped clients under a bounded load: each device sends on its own (a few sends in flight,
 * each to one or two other devices, some vanishing), and receives and acknowledges through the
 * SDK (which de-duplicates). Every send and every receipt goes into the history.
 */
export interface LoadDevice {
  key: DeviceKey;
  accountId: string;
  deviceId: number;
  store: MemoryStore;
  client: UmbraClient;
  /** Bumped when the client is replaced (reconnected as a new client over the same store). */
  generation: number;
}

export interface LoadOptions {
  /** Sends each device keeps in flight. */
  inFlight: number;
  /** Pause between one device's sends, ms. */
  intervalMs: number;
  /** Hard cap on sends per device per phase. */
  maxPerDevicePerPhase: number;
  /** Share of sends that vanish, and their timer range in ms. */
  vanishingShare: number;
  vanishingMs: [number, number];
  sendTimeoutMs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const b64u = (b: Buffer) => b.toString('base64url');

/** The content names the device it was encrypted for, so a misrouted copy is visible to the checker. */
export function contentFor(to: DeviceKey, clientMessageId: string): string {
  return b64u(Buffer.concat([Buffer.from(`${to}|${clientMessageId}|`, 'utf8'), randomBytes(48)]));
}

export function intendedFor(content: string): string {
  const text = Buffer.from(content, 'base64url').toString('latin1');
  return text.slice(0, text.indexOf('|'));
}

export class LoadDriver {
  readonly devices: LoadDevice[] = [];
  fault = 'setup';
  readonly sendErrors = new Map<string, number>();
  private running = false;
  private loops: Promise<void>[] = [];
  private readonly pending = new Set<Promise<unknown>>();

  constructor(
    private readonly origin: string,
    private readonly history: History,
    private readonly opts: LoadOptions,
  ) {}

  /** Registers `n` accounts with one device each; `connect` false leaves them offline. */
  async addDevices(n: number, connect = true): Promise<LoadDevice[]> {
    const added: LoadDevice[] = [];
    for (let i = 0; i < n; i++) {
      const { store, client } = await this.register();
      const id = client.identity;
      const d: LoadDevice = { key: `${id.accountIdText}:${id.device.deviceId}`, accountId: id.accountIdText, deviceId: id.device.deviceId, store, client, generation: 0 };
      this.wire(d);
      if (connect) await client.connect();
      this.hook(d);
      added.push(d);
    }
    this.devices.push(...added);
    return added;
  }

  /** Setup, not under test: a registration that meets a stale kept-alive edge connection is tried again as a new account. */
  private async register(): Promise<{ store: MemoryStore; client: UmbraClient }> {
    for (let attempt = 1; ; attempt++) {
      const store = new MemoryStore();
      const client = await UmbraClient.open({ serverUrl: this.origin, store, sendTimeoutMs: this.opts.sendTimeoutMs });
      try {
        await client.createIdentity();
        await client.register();
        return { store, client };
      } catch (err) {
        if (attempt >= 3 || (err as { code?: string }).code !== 'UNAVAILABLE') throw err;
        await sleep(500);
      }
    }
  }

  private wire(d: LoadDevice): void {
    const gen = d.generation;
    d.client.on('message', (env) => {
      if (d.generation !== gen || env.senderAccountId === null) return;
      this.history.show({ device: d.key, sender: `${env.senderAccountId}:${env.senderDeviceId}`, clientMessageId: env.clientMessageId });
    });
  }

  /** Every envelope the socket hands over, before the SDK's de-duplication (the SDK keeps its socket private). */
  private hook(d: LoadDevice): void {
    const socket = (d.client as unknown as { socket?: Socket }).socket;
    if (!socket) return;
    const gen = d.generation;
    socket.on(ServerEvent.Messages, ({ messages }: { messages: DeliveredEnvelope[] }) => {
      if (d.generation !== gen) return;
      const at = Date.now();
      for (const env of messages) {
        if (env.senderAccountId === null) continue; // server notices (expiry receipts)
        this.history.receive({
          device: d.key,
          sender: `${env.senderAccountId}:${env.senderDeviceId}`,
          clientMessageId: env.clientMessageId,
          intendedFor: intendedFor(env.content),
          expiresAt: env.expiresAt,
          at,
        });
      }
    });
  }

  /** Connects an offline device (its queue drains on connect). */
  async connect(d: LoadDevice): Promise<void> {
    await d.client.connect();
    this.hook(d);
  }

  /** Replaces a device's client by a new one over the same store (identity, token, seen ids): a reconnect. */
  async reopen(d: LoadDevice): Promise<void> {
    await d.client.close().catch(() => undefined);
    d.generation++;
    d.client = await UmbraClient.open({ serverUrl: this.origin, store: d.store, sendTimeoutMs: this.opts.sendTimeoutMs });
    this.wire(d);
    await d.client.connect();
    this.hook(d);
  }

  /** One send from `from`, recorded before it leaves and acknowledged when the server says stored. */
  send(from: LoadDevice, to: LoadDevice[], expiresAt = 0): { op: SendOp; done: Promise<void> } {
    const clientMessageId = b64u(randomBytes(16));
    const op = this.history.send({ fault: this.fault, sender: from.key, clientMessageId, recipients: to.map((t) => t.key), expiresAt, sentAt: Date.now() });
    const request = {
      clientMessageId,
      recipients: to.map((t) => ({ accountId: t.accountId, deviceId: t.deviceId, type: 2 as const, content: contentFor(t.key, clientMessageId) })),
      ...(expiresAt > 0 ? { expiresAt } : {}),
    };
    const done = from.client.send(request).then(
      () => this.history.acked(op, Date.now()),
      (err: unknown) => {
        const code = (err as { code?: string }).code ?? String(err);
        this.sendErrors.set(code, (this.sendErrors.get(code) ?? 0) + 1);
      },
    );
    this.pending.add(done);
    void done.finally(() => this.pending.delete(done));
    return { op, done };
  }

  private async loop(d: LoadDevice): Promise<void> {
    const inFlight = new Set<Promise<void>>();
    let sent = 0;
    while (this.running && sent < this.opts.maxPerDevicePerPhase) {
      if (inFlight.size >= this.opts.inFlight) {
        await Promise.race([...inFlight, sleep(250)]);
        continue;
      }
      const others = this.online().filter((o) => o !== d);
      if (others.length === 0) break;
      const first = others[Math.floor(Math.random() * others.length)]!;
      const second = others[Math.floor(Math.random() * others.length)]!;
      const to = Math.random() < 0.5 && second !== first ? [first, second] : [first];
      const [lo, hi] = this.opts.vanishingMs;
      const expiresAt = Math.random() < this.opts.vanishingShare ? Date.now() + lo + Math.floor(Math.random() * (hi - lo)) : 0;
      const { done } = this.send(d, to, expiresAt);
      inFlight.add(done);
      void done.finally(() => inFlight.delete(done));
      sent++;
      await sleep(this.opts.intervalMs);
    }
  }

  private readonly offline = new Set<LoadDevice>();

  /** Devices taking part in the running load (not the ones added offline). */
  online(): LoadDevice[] {
    return this.devices.filter((d) => !this.offline.has(d));
  }

  markOffline(ds: LoadDevice[]): void {
    for (const d of ds) this.offline.add(d);
  }

  start(fault: string): void {
    this.fault = fault;
    this.running = true;
    this.loops = this.online().map((d) => this.loop(d));
  }

  /** Stops issuing sends; then waits (bounded) for the ones in flight to be stored or refused. */
  async stop(settleMs: number): Promise<{ unsettled: number }> {
    this.running = false;
    await Promise.all(this.loops);
    const deadline = Date.now() + settleMs;
    while (this.pending.size > 0 && Date.now() < deadline) await sleep(100);
    return { unsettled: this.pending.size };
  }

  async close(): Promise<void> {
    this.running = false;
    await Promise.all(this.devices.map((d) => d.client.close().catch(() => undefined)));
  }
}

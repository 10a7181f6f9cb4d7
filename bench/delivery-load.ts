/**
 * Load generator of the delivery bench, run as its own process (forked by delivery.bench.ts with an
 * IPC channel) so that its CPU is not the server's. It behaves like real clients on the documented
 * API: one socket.io connection per device on the public origin, one 200-byte opaque envelope per
 * send, each sender at its own Poisson rate, acks batched like the SDK (after 5 ms or 200 ids).
 * It answers each phase with counts and raw latencies (see support/load-protocol.ts).
 */
import { randomBytes } from 'node:crypto';
import { io, type Socket } from 'socket.io-client';
import { ClientEvent, ServerEvent, WS_PATH, type DeliveredEnvelope, type SendResult, type WsAck } from '@umbra/protocol';
import type { BenchDevice, DevicePair, FromLoad, PhaseResult, ToLoad } from './support/load-protocol';

type Phase = 'steady' | 'saturate' | 'offline-store';

interface SendRecord {
  t0: number;
  phase: Phase;
  measured: boolean;
  stored: boolean;
  received: boolean;
}

const reply = (msg: FromLoad): void => {
  process.send?.(msg);
};

let origin = '';
let pairs: DevicePair[] = [];
let content = '';
const senders: Socket[] = [];
const recipients: (Socket | undefined)[] = [];
const records = new Map<string, SendRecord>();
let idPrefix = randomBytes(8);
let idCounter = 0;

/** Receipts of the current phase (set by the phase runner). */
let current: { phase: Phase; windowStart: number; windowEnd: number; delivered: number; latencies: number[]; onReceipt?: () => void } | undefined;

function nextClientMessageId(): string {
  const b = Buffer.alloc(16);
  idPrefix.copy(b, 0);
  b.writeBigUInt64BE(BigInt(++idCounter), 8);
  return b.toString('base64url');
}

/** `receives`: the device's handlers go on before the connection, as the SDK's do (a server may push at once). */
function connect(d: BenchDevice, receives = false): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = io(d.origin ?? origin, { path: WS_PATH, transports: ['websocket'], auth: { token: d.token }, reconnection: false, forceNew: true });
    if (receives) attachRecipient(s);
    s.once('connect', () => resolve(s));
    s.once('connect_error', reject);
  });
}

/** Receives like the SDK: every envelope is acked, acks go out after 5 ms or 200 ids. */
function attachRecipient(s: Socket): void {
  let buffer: string[] = [];
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    const ids = buffer;
    buffer = [];
    if (ids.length > 0 && s.connected) s.emit(ClientEvent.Ack, { ids });
  };
  s.on(ServerEvent.Messages, ({ messages }: { messages: DeliveredEnvelope[] }) => {
    const now = performance.now();
    const wall = Date.now();
    for (const m of messages) {
      const rec = records.get(m.clientMessageId);
      if (rec && !rec.received) {
        rec.received = true;
        if (current && rec.phase === current.phase) {
          if (wall >= current.windowStart && wall <= current.windowEnd) current.delivered++;
          if (rec.measured) current.latencies.push(now - rec.t0);
          current.onReceipt?.();
        }
      }
      buffer.push(m.id);
      if (buffer.length >= 200) flush();
      else if (!timer) timer = setTimeout(flush, 5);
    }
  });
  s.on('disconnect', flush);
}

function emptyResult(): PhaseResult {
  return { sent: 0, stored: 0, failed: 0, deliveredInWindow: 0, latencies: [], storedLatencies: [], lost: 0, elapsedMs: 0, windowStart: 0, windowEnd: 0, lateSends: 0, failureCodes: {} };
}

function send(i: number, to: BenchDevice, phase: Phase, measured: boolean, result: PhaseResult): Promise<void> {
  return new Promise((resolve) => {
    const cmid = nextClientMessageId();
    const t0 = performance.now();
    const rec: SendRecord = { t0, phase, measured, stored: false, received: false };
    records.set(cmid, rec);
    result.sent++;
    senders[i]!.timeout(30_000).emit(
      ClientEvent.Send,
      { clientMessageId: cmid, recipients: [{ accountId: to.accountId, deviceId: to.deviceId, type: 2, content }] },
      (err: Error | null, res: WsAck<SendResult>) => {
        if (!err && res.ok) {
          rec.stored = true;
          result.stored++;
          if (measured) result.storedLatencies.push(performance.now() - t0);
        } else {
          result.failed++;
          const code = err ? 'TIMEOUT' : res.ok ? 'OK' : res.error.code;
          result.failureCodes[code] = (result.failureCodes[code] ?? 0) + 1;
          if (!rec.received) records.delete(cmid);
        }
        resolve();
      },
    );
  });
}

/** Waits until every stored message of `phase` was received, or `tailMs`; returns how many were not. */
async function settle(phase: Phase, tailMs: number, inflight: Promise<void>[]): Promise<number> {
  await Promise.all(inflight);
  const missing = () => {
    let n = 0;
    for (const r of records.values()) if (r.phase === phase && r.stored && !r.received) n++;
    return n;
  };
  // Waits while receipts still come in (a backlog drains), at most 60 s; `tailMs` without progress ends it.
  const hardDeadline = Date.now() + Math.max(tailMs, 60_000);
  let deadline = Date.now() + tailMs;
  let left = missing();
  while (left > 0 && Date.now() < deadline && Date.now() < hardDeadline) {
    await new Promise((r) => setTimeout(r, 50));
    const now = missing();
    if (now < left) deadline = Date.now() + tailMs;
    left = now;
  }
  const lost = missing();
  for (const [k, r] of records) if (r.phase === phase && (r.received || !r.stored)) records.delete(k);
  return lost;
}

const sleepUntil = (t: number) => new Promise((r) => setTimeout(r, Math.max(0, t - Date.now())));

async function steady(cmd: Extract<ToLoad, { type: 'steady' }>): Promise<PhaseResult> {
  const result = emptyResult();
  const windowStart = cmd.startAt + cmd.warmupMs;
  const windowEnd = windowStart + cmd.windowMs;
  result.windowStart = windowStart;
  result.windowEnd = windowEnd;
  current = { phase: 'steady', windowStart, windowEnd, delivered: 0, latencies: [] };
  const inflight: Promise<void>[] = [];
  const meanGap = 1000 / cmd.ratePerSender;
  // Exponential inter-send gaps: each device a Poisson process of its own.
  const gap = () => -Math.log(1 - Math.random()) * meanGap;
  await Promise.all(
    pairs.map(
      (p, i) =>
        new Promise<void>((done) => {
          let due = cmd.startAt + gap();
          const fire = () => {
            if (due >= windowEnd) return done();
            if (Date.now() - due > 10) result.lateSends++;
            const measured = due >= windowStart;
            inflight.push(send(i, p.recipient, 'steady', measured, result));
            due += gap();
            setTimeout(fire, Math.max(0, due - Date.now()));
          };
          setTimeout(fire, Math.max(0, due - Date.now()));
        }),
    ),
  );
  result.elapsedMs = Date.now() - cmd.startAt;
  result.lost = await settle('steady', cmd.tailMs, inflight);
  result.deliveredInWindow = current.delivered;
  result.latencies = current.latencies;
  // Sends before the window were warm-up: their stored counts stay, their latencies are not kept.
  current = undefined;
  return result;
}

async function saturate(cmd: Extract<ToLoad, { type: 'saturate' }>): Promise<PhaseResult> {
  const result = emptyResult();
  const end = cmd.startAt + cmd.windowMs;
  result.windowStart = cmd.startAt;
  result.windowEnd = end;
  current = { phase: 'saturate', windowStart: cmd.startAt, windowEnd: end, delivered: 0, latencies: [] };
  await sleepUntil(cmd.startAt);
  const inflight: Promise<void>[] = [];
  await Promise.all(
    pairs.flatMap((p, i) =>
      Array.from({ length: cmd.window }, async () => {
        while (Date.now() < end) {
          const s = send(i, p.recipient, 'saturate', true, result);
          inflight.push(s);
          await s;
        }
      }),
    ),
  );
  result.elapsedMs = Date.now() - cmd.startAt;
  result.lost = await settle('saturate', cmd.tailMs, inflight);
  result.deliveredInWindow = current.delivered;
  result.latencies = current.latencies;
  current = undefined;
  return result;
}

let offlineCount = 0;

async function offlineStore(cmd: Extract<ToLoad, { type: 'offline-store' }>): Promise<PhaseResult> {
  offlineCount = Math.min(cmd.offlineRecipients, pairs.length);
  for (let r = 0; r < offlineCount; r++) recipients[r]?.disconnect();
  await new Promise((r) => setTimeout(r, 500));
  const result = emptyResult();
  const t0 = Date.now();
  result.windowStart = t0;
  let next = 0;
  await Promise.all(
    pairs.flatMap((_p, i) =>
      Array.from({ length: cmd.window }, async () => {
        while (next < cmd.messages) {
          const k = next++;
          await send(i, pairs[k % offlineCount]!.recipient, 'offline-store', false, result);
        }
      }),
    ),
  );
  result.windowEnd = Date.now();
  result.elapsedMs = result.windowEnd - t0;
  return result;
}

async function drain(cmd: Extract<ToLoad, { type: 'drain' }>): Promise<{ messages: number; expected: number; elapsedMs: number; connectedMs: number; firstMessageMs: number }> {
  let expected = 0;
  for (const r of records.values()) if (r.phase === 'offline-store' && r.stored && !r.received) expected++;
  let got = 0;
  let finish: () => void = () => undefined;
  const all = new Promise<void>((r) => (finish = r));
  let firstMessageMs = 0;
  const t0 = performance.now();
  current = {
    phase: 'offline-store',
    windowStart: 0,
    windowEnd: Number.MAX_SAFE_INTEGER,
    delivered: 0,
    latencies: [],
    onReceipt: () => {
      if (got === 0) firstMessageMs = performance.now() - t0;
      if (++got >= expected) finish();
    },
  };
  if (expected === 0) finish();
  await Promise.all(
    pairs.slice(0, offlineCount).map(async (p, r) => {
      recipients[r] = await connect(p.recipient, true);
    }),
  );
  const connectedMs = performance.now() - t0;
  await Promise.race([all, new Promise((r) => setTimeout(r, cmd.timeoutMs))]);
  const elapsedMs = performance.now() - t0;
  current = undefined;
  return { messages: got, expected, elapsedMs, connectedMs, firstMessageMs };
}

async function handle(msg: ToLoad): Promise<void> {
  switch (msg.type) {
    case 'init':
      origin = msg.origin;
      pairs = msg.pairs;
      content = randomBytes(msg.size).toString('base64url');
      idPrefix = randomBytes(8);
      return reply({ type: 'ready' });
    case 'connect': {
      // Connects the pairs up to `fraction` of this process's share that are not connected yet.
      const upTo = Math.ceil(pairs.length * msg.fraction);
      for (let i = senders.length; i < upTo; i += 50) {
        await Promise.all(
          pairs.slice(i, Math.min(i + 50, upTo)).map(async (p, j) => {
            senders[i + j] = await connect(p.sender);
            recipients[i + j] = await connect(p.recipient, true);
          }),
        );
      }
      return reply({ type: 'connected', sockets: senders.length + recipients.length });
    }
    case 'steady':
      return reply({ type: 'phase', phase: 'steady', result: await steady(msg) });
    case 'saturate':
      return reply({ type: 'phase', phase: 'saturate', result: await saturate(msg) });
    case 'offline-store':
      return reply({ type: 'phase', phase: 'offline-store', result: await offlineStore(msg) });
    case 'drain':
      return reply({ type: 'drained', ...(await drain(msg)) });
    case 'stop':
      for (const s of [...senders, ...recipients]) s?.disconnect();
      process.disconnect?.();
      setTimeout(() => process.exit(0), 100).unref();
      return;
  }
}

process.on('message', (msg: ToLoad) => {
  handle(msg).catch((err: unknown) => reply({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) }));
});
reply({ type: 'ready' });

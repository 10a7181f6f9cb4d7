/**
 * Messages between the delivery bench (parent) and its load generator processes
 * (dist/bench/delivery-load.js, forked with an IPC channel). Every phase is started by the parent
 * at an absolute wall-clock time so that several load processes run it together, and each answers
 * with its counts and raw latencies; the parent merges them.
 */
export interface BenchDevice {
  token: string;
  accountId: string;
  deviceId: number;
  /** The gateway this device connects to, when not the run's origin (bench:floor puts each device on one of its processes, as a load balancer would). */
  origin?: string;
}

export interface DevicePair {
  sender: BenchDevice;
  recipient: BenchDevice;
}

/**
 * Which of `n` gateways pair `i`'s devices connect to when the bench spreads them itself, as a load
 * balancer would: senders round-robin, and (n-1)/n of the recipients on another gateway than their sender.
 */
export function spreadPair(i: number, n: number): { sender: number; recipient: number } {
  return { sender: i % n, recipient: Math.floor(i / n) % n };
}

export type ToLoad =
  | { type: 'init'; origin: string; pairs: DevicePair[]; size: number; seed: number }
  /** Connects the first `fraction` of this process's pairs (both devices of each) not connected yet. */
  | { type: 'connect'; fraction: number }
  /** Poisson sends, each sender at ratePerSender; measured from startAt + warmupMs for windowMs. */
  | { type: 'steady'; startAt: number; warmupMs: number; windowMs: number; ratePerSender: number; tailMs: number }
  /** Each sender keeps `window` sends in flight (the next one goes when the server's "stored" ack comes). */
  | { type: 'saturate'; startAt: number; windowMs: number; window: number; tailMs: number }
  /** Recipients [0, offlineRecipients) disconnect; `messages` sends to them, as fast as acks allow. */
  | { type: 'offline-store'; offlineRecipients: number; messages: number; window: number }
  /** The offline recipients reconnect on the origin and drain their queues. */
  | { type: 'drain'; timeoutMs: number }
  | { type: 'stop' };

export interface PhaseResult {
  /** Sends started in the window (steady: by schedule; saturation: all). */
  sent: number;
  /** "stored" acks received for them. */
  stored: number;
  failed: number;
  /** Unique envelopes received by recipients with a receipt time in the window. */
  deliveredInWindow: number;
  /** send → receipt latencies (ms) of messages sent in the window. */
  latencies: number[];
  /** send → "stored" ack latencies (ms) of messages sent in the window. */
  storedLatencies: number[];
  /** Stored (acked) messages of this phase never received by the end of the tail. */
  lost: number;
  /** Wall-clock ms the phase's sends took (saturation: window; offline: until the last ack). */
  elapsedMs: number;
  /** Wall-clock time the measurement window began and ended (epoch ms). */
  windowStart: number;
  windowEnd: number;
  /** Steady: sends that were due but started late by > 10 ms (the load generator falling behind). */
  lateSends: number;
  failureCodes: Record<string, number>;
}

export type FromLoad =
  | { type: 'ready' }
  | { type: 'connected'; sockets: number }
  | { type: 'phase'; phase: 'steady' | 'saturate' | 'offline-store'; result: PhaseResult }
  | { type: 'drained'; messages: number; expected: number; elapsedMs: number; connectedMs: number; firstMessageMs: number }
  | { type: 'error'; message: string };

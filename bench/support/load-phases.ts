/**
 * The realistic load's phases, shared by bench:delivery (against Umbra) and bench:floor (against
 * the parts alone): connect every device in two halves (memory per idle socket), an idle window,
 * a steady Poisson rate, saturation, then an offline store and its drain. CPU is read per group
 * from /proc over each window; groups named `svc:<name>` are the server's processes.
 */
import os from 'node:os';
import { CpuWindow, type CpuSampler } from './proc-cpu';
import { PgStats } from './pg-stats';
import type { LoadProc } from './load-procs';
import type { PhaseResult } from './load-protocol';
import { summarize as summarizeLatency } from './stats';

export interface PhaseArgs {
  devices: number;
  seconds: number;
  warmup: number;
  rate: number;
  drain: number;
  offline: number;
  window: number;
  tail: number;
}

export interface PhaseProbes {
  sampler: CpuSampler;
  pgStats?: PgStats;
  /** Resident bytes of each process that holds sockets (empty when not visible). */
  rss: () => Promise<number[]>;
  log: (msg: string) => void;
  /** The server's own timings over the steady window (bench:delivery: its metrics histograms). */
  timings?: () => Promise<{ stop: () => Promise<Record<string, unknown>> }>;
}

interface CpuSplit {
  services: number;
  redis: number | null;
  postgres: number | null;
  total: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sleepUntil = (t: number) => sleep(Math.max(0, t - Date.now()));
const round = (v: number, d = 3) => +v.toFixed(d);

/** CPU ms per message over a window: the server split, the load generator and the edge apart. */
function perMessage({ ms, vanished }: { ms: Record<string, number>; vanished: number }, messages: number, seconds: number) {
  const per = (v: number | undefined) => (v === undefined || messages === 0 ? null : round(v / messages, 4));
  const services = Object.entries(ms)
    .filter(([k]) => k.startsWith('svc:'))
    .reduce((s, [, v]) => s + v, 0);
  const byService = Object.fromEntries(
    Object.entries(ms)
      .filter(([k]) => k.startsWith('svc:'))
      .map(([k, v]) => [k.slice(4), per(v)]),
  );
  const split: CpuSplit = {
    services: per(services) ?? 0,
    redis: per(ms.redis),
    postgres: per(ms.postgres),
    total: per(services + (ms.redis ?? 0) + (ms.postgres ?? 0)) ?? 0,
  };
  return {
    serverCpuMsPerMsg: split,
    servicesCpuMsPerMsg: byService,
    loadGenCpuMsPerMsg: per(ms.loadGen),
    edgeCpuMsPerMsg: per(ms.edge),
    /** Cores busy on average over the window (server side only). */
    serverCores: round((services + (ms.redis ?? 0) + (ms.postgres ?? 0)) / (seconds * 1000), 2),
    loadGenCores: round((ms.loadGen ?? 0) / (seconds * 1000), 2),
    vanishedPids: vanished,
  };
}

function merge(results: PhaseResult[]) {
  const sum = (f: (r: PhaseResult) => number) => results.reduce((s, r) => s + f(r), 0);
  const codes: Record<string, number> = {};
  for (const r of results) for (const [k, v] of Object.entries(r.failureCodes)) codes[k] = (codes[k] ?? 0) + v;
  return {
    sent: sum((r) => r.sent),
    stored: sum((r) => r.stored),
    failed: sum((r) => r.failed),
    delivered: sum((r) => r.deliveredInWindow),
    lost: sum((r) => r.lost),
    lateSends: sum((r) => r.lateSends),
    elapsedMs: Math.max(...results.map((r) => r.elapsedMs)),
    latency: summarizeLatency(results.flatMap((r) => r.latencies)),
    stored_latency: summarizeLatency(results.flatMap((r) => r.storedLatencies)),
    failureCodes: codes,
  };
}

/** Runs every phase on the load processes (already initialised with their pairs) and returns the figures. */
export async function runLoadPhases(load: LoadProc[], args: PhaseArgs, probes: PhaseProbes) {
  const { sampler, pgStats, log } = probes;
  const nPairs = args.devices / 2;
  const loadavgStart = os.loadavg();
  const rssBefore = await probes.rss();
  log(`connecting ${args.devices} sockets`);
  // In two halves: the whole RSS growth per socket includes the server's one-time growth on its
  // first connections; the second half's growth is the marginal cost.
  const half = await Promise.all(load.map((p) => p.request({ type: 'connect', fraction: 0.5 }, 'connected')));
  await sleep(2000);
  const rssHalf = await probes.rss();
  const conn = await Promise.all(load.map((p) => p.request({ type: 'connect', fraction: 1 }, 'connected')));
  await sleep(2000);
  const rssIdle = await probes.rss();
  const growth = (a: number[], b: number[]) => b.reduce((s, v, i) => s + (v - a[i]!), 0);
  const socketsHalf = half.reduce((s, c) => s + c.sockets, 0);
  const socketsAll = conn.reduce((s, c) => s + c.sockets, 0);
  const bytesPerIdleConn = rssBefore.length ? Math.round(growth(rssBefore, rssIdle) / socketsAll) : null;
  const bytesPerIdleConnMarginal = rssBefore.length && socketsAll > socketsHalf ? Math.round(growth(rssHalf, rssIdle) / (socketsAll - socketsHalf)) : null;

  // Idle baseline: what the server side spends with every socket connected and nothing sent
  // (Redis and Postgres are shared with whatever else runs on this machine).
  const idleWindow = await CpuWindow.start(sampler);
  await sleep(3000);
  const idle = (await idleWindow.stop()).ms;
  const idleCpuMsPerS = Object.fromEntries(Object.entries(idle).map(([k, v]) => [k, round(v / 3, 1)]));

  // Steady rate: each sender a Poisson process at rate / pairs.
  const windowMs = args.seconds * 1000;
  const warmupMs = args.warmup * 1000;
  log(`steady: ${args.rate} msg/s from ${nPairs} independent senders, ${args.warmup} s warm-up + ${args.seconds} s measured`);
  const startAt = Date.now() + 500;
  const steadyP = Promise.all(load.map((p) => p.request({ type: 'steady', startAt, warmupMs, windowMs, ratePerSender: args.rate / nPairs, tailMs: args.tail }, 'phase')));
  await sleepUntil(startAt + warmupMs);
  const steadyWindow = await CpuWindow.start(sampler);
  const pgBefore = await pgStats?.read();
  const timings = await probes.timings?.();
  await sleepUntil(startAt + warmupMs + windowMs);
  const steadyMs = await steadyWindow.stop();
  const pgAfter = await pgStats?.read();
  const serverTimings = await timings?.stop();
  const steady = merge((await steadyP).map((m) => m.result));
  const steadyCpu = perMessage(steadyMs, steady.delivered, args.seconds);
  const steadyPg = pgBefore && pgAfter ? PgStats.perMessage(pgBefore, pgAfter, steady.delivered, args.seconds) : {};

  // Saturation: every sender keeps `window` sends in flight, the next one on the "stored" ack.
  log(`saturation: ${nPairs} senders × ${args.window} in flight for ${args.seconds} s`);
  const satAt = Date.now() + 500;
  const satP = Promise.all(load.map((p) => p.request({ type: 'saturate', startAt: satAt, windowMs, window: args.window, tailMs: args.tail }, 'phase')));
  await sleepUntil(satAt);
  const satWindow = await CpuWindow.start(sampler);
  await sleepUntil(satAt + windowMs);
  const satMs = await satWindow.stop();
  const sat = merge((await satP).map((m) => m.result));
  const satCpu = perMessage(satMs, sat.delivered, args.seconds);

  // Offline: recipients disconnect, the senders store --drain messages for them, they reconnect and drain.
  const offlinePerProc = Math.max(1, Math.floor(Math.min(args.offline, nPairs) / load.length));
  const perProcMessages = Math.floor(args.drain / load.length);
  log(`offline: ${args.drain} messages to ${offlinePerProc * load.length} offline devices, then reconnect and drain`);
  const storeWindow = await CpuWindow.start(sampler);
  const store = merge(
    (await Promise.all(load.map((p) => p.request({ type: 'offline-store', offlineRecipients: offlinePerProc, messages: perProcMessages, window: args.window }, 'phase')))).map((m) => m.result),
  );
  const storeMs = await storeWindow.stop();
  const drainWindow = await CpuWindow.start(sampler);
  const drained = await Promise.all(load.map((p) => p.request({ type: 'drain', timeoutMs: 120_000 }, 'drained')));
  const drainMs = await drainWindow.stop();
  const drainMessages = drained.reduce((s, d) => s + d.messages, 0);
  const drainExpected = drained.reduce((s, d) => s + d.expected, 0);
  const drainSeconds = Math.max(...drained.map((d) => d.elapsedMs)) / 1000;
  const storeSeconds = store.elapsedMs / 1000;

  return {
    devices: args.devices,
    sockets: socketsAll,
    loadProcs: load.length,
    cpus: os.cpus().length,
    loadavg_start: loadavgStart.map((v) => round(v, 2)),
    loadavg_end: os.loadavg().map((v) => round(v, 2)),
    steady: {
      target_rate_per_s: args.rate,
      achieved_rate_per_s: Math.round(steady.delivered / args.seconds),
      window_s: args.seconds,
      warmup_s: args.warmup,
      delivered: steady.delivered,
      sent: steady.sent,
      stored: steady.stored,
      p50_ms: steady.latency.p50,
      p95_ms: steady.latency.p95,
      p99_ms: steady.latency.p99,
      max_ms: steady.latency.max,
      stored_p50_ms: steady.stored_latency.p50,
      stored_p99_ms: steady.stored_latency.p99,
      late_sends: steady.lateSends,
      send_failures: steady.failed,
      failure_codes: steady.failureCodes,
      lost: steady.lost,
      ...steadyCpu,
      ...steadyPg,
      ...(serverTimings ? { server_timings: serverTimings } : {}),
    },
    serverCpuMsPerMsg: steadyCpu.serverCpuMsPerMsg,
    loadGenCpuMsPerMsg: steadyCpu.loadGenCpuMsPerMsg,
    saturation: {
      window: args.window,
      delivered_per_s: Math.round(sat.delivered / args.seconds),
      stored: sat.stored,
      p50_ms: sat.latency.p50,
      p99_ms: sat.latency.p99,
      stored_p50_ms: sat.stored_latency.p50,
      stored_p99_ms: sat.stored_latency.p99,
      send_failures: sat.failed,
      failure_codes: sat.failureCodes,
      lost: sat.lost,
      ...satCpu,
    },
    offline: {
      devices: offlinePerProc * load.length,
      stored: store.stored,
      store_per_s: Math.round(store.stored / storeSeconds),
      store_failures: store.failed,
      drained: drainMessages,
      drain_per_s: Math.round(drainMessages / drainSeconds),
      // The drain's time includes the devices' reconnects: when the last socket was connected, and the first envelope arrived.
      drain_connected_ms: Math.round(Math.max(...drained.map((d) => d.connectedMs))),
      drain_first_message_ms: Math.round(Math.min(...drained.map((d) => d.firstMessageMs))),
      lost: drainExpected - drainMessages,
      store: perMessage(storeMs, store.stored, storeSeconds),
      drain: perMessage(drainMs, drainMessages, drainSeconds),
    },
    lost: steady.lost + sat.lost + (drainExpected - drainMessages),
    bytes_per_idle_conn: bytesPerIdleConn,
    bytes_per_idle_conn_marginal: bytesPerIdleConnMarginal,
    idleCpuMsPerS,
  };
}

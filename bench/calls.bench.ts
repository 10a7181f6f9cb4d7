/**
 * Call setup benchmark (not a test): 20 one-to-one calls between two SDK devices (front door,
 * werift peers with relay-only ICE) over the real stack (gateway, relay, Postgres, Redis) and the
 * embedded coturn on loopback. The callee answers as soon as it rings. Reports, as one JSON line:
 * setup time from the offer sent (calls.start resolved) to `connected` on the caller, p50/p99; the
 * same from calls.start called (TURN credentials, offer, ICE gathering included); and the signalling
 * messages per call (E2EE sends of both devices, each fanned out to the peer's devices). A fresh
 * pair of accounts every 10 calls (werift keeps its TURN allocations until they time out).
 *   npm run bench:calls -- [--calls 20]
 */
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { rm } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { MemoryStore, Umbra, type UmbraEventOf } from '@umbra/sdk';
import { migrateDatabase } from '@umbra/server';
import { recreateDatabase } from './support/fresh-database';
import { WeriftCallMedia } from '@umbra/cli/dist/call-media.js';
import { startStack } from '../scripts/lib/stack';

const PG = process.env.BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432';
const DB_NAME = 'umbra_bench_calls';
const CALLS_PER_PAIR = 10;
const log = (line: string) => process.stderr.write(`${line}\n`);

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : def;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function freshDatabase(): Promise<string> {
  const url = `${PG}/${DB_NAME}`;
  await recreateDatabase(url);
  await migrateDatabase(url);
  return url;
}

interface Phone {
  umbra: Umbra;
  store: MemoryStore;
  media: WeriftCallMedia;
}

async function phone(origin: string): Promise<Phone> {
  const store = new MemoryStore();
  const media = new WeriftCallMedia({ tone: false });
  const umbra = (await Umbra.create({ serverUrl: origin, store, calls: { createPeerConnection: media.createPeerConnection, tickMs: 200 } })) as unknown as Umbra;
  return { umbra, store, media };
}

const signalsSent = async (p: Phone) => (await p.store.keys('calls/signals/')).length;

function nextState(p: Phone, callId: () => string | undefined, state: UmbraEventOf<'call'>['state'], timeoutMs = 30_000): Promise<UmbraEventOf<'call'>> {
  return p.umbra.next('call', (e) => e.callId === callId() && e.state === state, timeoutMs);
}

async function main(): Promise<void> {
  const calls = Number(arg('calls', '20'));
  const root = path.resolve(__dirname, '..', '..');
  const prefix = `bc${randomBytes(3).toString('hex')}`;
  const turnDir = path.join(tmpdir(), `umbra-bench-calls-${prefix}`);
  const stack = await startStack({
    env: {
      ...process.env,
      DATABASE_URL: await freshDatabase(),
      REDIS_PREFIX: prefix,
      LOG_LEVEL: 'warn',
      POW_DIFFICULTY: '1',
      PUBLIC_ORIGIN: 'http://127.0.0.1:18280',
      RATE_LIMIT_TURN_PER_ACCOUNT_PER_HOUR: '10000',
    },
    distDir: path.join(root, 'dist'),
    edgePort: 18280,
    host: '127.0.0.1',
    instances: { gateway: 1, 'message-relay': 1, 'expiry-worker': 0 },
    basePort: 13300,
    s3Dir: path.join(turnDir, 's3'),
    s3Port: 19300,
    turn: { port: 13478, relayPorts: [49300, 49399], dir: turnDir },
    log,
    serviceOutput: 'inherit',
  });
  const phones: Phone[] = [];
  try {
    let alice!: Phone;
    let bob!: Phone;
    const fromOffer: number[] = [];
    const fromStart: number[] = [];
    const signals: number[] = [];
    const failed: { call: number; reason: string }[] = [];
    for (let i = 0; i < calls; i++) {
      // werift does not release its TURN allocation on close (no Refresh with lifetime 0), so each
      // account's allocations stay until their lifetime ends and coturn's user-quota (12) is reached
      // after 12 calls: a fresh pair of accounts every CALLS_PER_PAIR calls.
      if (i % CALLS_PER_PAIR === 0) {
        alice = await phone(stack.origin);
        bob = await phone(stack.origin);
        phones.push(alice, bob);
        const callee = bob;
        callee.umbra.on('call', (e) => {
          if (e.state === 'ringing') void callee.umbra.calls.answer(e.callId);
        });
      }
      const before = (await signalsSent(alice)) + (await signalsSent(bob));
      let id: string | undefined;
      // The first of connected or ended on the caller (a call that fails is counted, not waited for).
      const outcome = alice.umbra.next('call', (e) => e.callId === id && (e.state === 'connected' || e.state === 'ended'), 60_000);
      const t0 = performance.now();
      id = await alice.umbra.calls.start(bob.umbra.client.identity.accountIdText, { media: 'audio' });
      const t1 = performance.now();
      const first = await outcome.catch((err: unknown) => ({ state: 'timeout', reason: String(err) }) as const);
      const t2 = performance.now();
      if (first.state === 'connected') {
        fromOffer.push(t2 - t1);
        fromStart.push(t2 - t0);
        const ended = Promise.all([nextState(alice, () => id, 'ended'), nextState(bob, () => id, 'ended')]);
        await alice.umbra.calls.hangup(id);
        await ended;
      } else {
        failed.push({ call: i + 1, reason: first.reason ?? first.state });
        await alice.umbra.calls.hangup(id).catch(() => undefined);
        await new Promise((r) => setTimeout(r, 1000));
      }
      await Promise.all([alice.umbra.settle(), bob.umbra.settle()]);
      signals.push((await signalsSent(alice)) + (await signalsSent(bob)) - before);
      log(`call ${i + 1}/${calls}: ${first.state === 'connected' ? `offer sent → connected ${(t2 - t1).toFixed(0)} ms (start → connected ${(t2 - t0).toFixed(0)} ms)` : `did not connect (${first.reason ?? first.state}) after ${(t2 - t1).toFixed(0)} ms`}, ${signals.at(-1)} signalling messages`);
    }
    const round = (n: number) => Math.round(n);
    const result = {
      bench: 'calls',
      calls,
      connected: fromOffer.length,
      failed,
      setupMs: { p50: round(percentile(fromOffer, 50)), p99: round(percentile(fromOffer, 99)), max: round(Math.max(...fromOffer)) },
      startToConnectedMs: { p50: round(percentile(fromStart, 50)), p99: round(percentile(fromStart, 99)) },
      signallingMessagesPerCall: { mean: +(signals.reduce((a, b) => a + b, 0) / signals.length).toFixed(1), min: Math.min(...signals), max: Math.max(...signals) },
      machine: { cpus: cpus().length, model: cpus()[0]?.model, loadavg1: +loadavg()[0]!.toFixed(2) },
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    for (const p of phones) {
      await p.umbra.close().catch(() => undefined);
      p.media.close();
    }
    await stack.stop();
    await rm(turnDir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    log(`bench:calls failed: ${err instanceof Error ? err.stack : String(err)}`);
    process.exit(1);
  },
);

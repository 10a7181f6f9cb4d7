import type * as NodeWorkerThreads from 'node:worker_threads';
import type { PipelinedHash } from './attachment-provider';

const HASH_WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const jobs = new Map();
parentPort.on('message', (m) => {
  let j = jobs.get(m.job);
  if (!j) jobs.set(m.job, (j = { h: createHash('sha256'), ring: undefined }));
  if (m.ring) j.ring = m.ring;
  if (m.length !== undefined) {
    j.h.update(new Uint8Array(j.ring, m.slot * m.slotBytes, m.length));
    parentPort.postMessage({ job: m.job, back: m.slot });
  } else if (m.end) {
    jobs.delete(m.job);
    if (!m.abort) parentPort.postMessage({ job: m.job, digest: j.h.digest() });
  }
});
`;

/**
 * Bytes per slot of a hash's ring, and how many slots (memory: their product). A slot holds the encryptor's
 * largest batch (the header and 16 sealed chunks, 1,048,888 bytes) so that a batch goes over in one message.
 */
const HASH_SLOT_BYTES = 1024 * 1024 + 64 * 1024;
const HASH_SLOTS = 4;
/** Smaller updates (the decryptor's single chunks) gather in a slot until it holds this much. */
const HASH_POST_BYTES = 256 * 1024;

interface HashWorker {
  post(msg: unknown): void;
  /** Jobs in progress: the worker keeps the process alive only while there are some. */
  hold(delta: 1 | -1): void;
  handlers: Map<number, (m: { back?: number; digest?: Uint8Array }) => void>;
  nextJob: number;
}

/**
 * SHA-256 on one shared worker thread (node:crypto there too). Each hash has a SharedArrayBuffer ring of
 * HASH_SLOTS slots: this thread copies bytes into a free slot, the worker hashes the slot in place and hands
 * its number back (no transfer, no second copy).
 */
export function workerSha256Factory(wt: typeof NodeWorkerThreads): () => PipelinedHash {
  let worker: HashWorker | undefined;
  const start = (): HashWorker => {
    const w = new wt.Worker(HASH_WORKER_SOURCE, { eval: true });
    w.unref();
    let active = 0;
    const hw: HashWorker = {
      post: (msg) => w.postMessage(msg),
      hold(delta) {
        active += delta;
        if (active === 1 && delta === 1) w.ref();
        if (active === 0) w.unref();
      },
      handlers: new Map(),
      nextJob: 1,
    };
    w.on('message', (m: { job: number; back?: number; digest?: Uint8Array }) => hw.handlers.get(m.job)?.(m));
    w.on('error', () => {
      // Every pending hash fails (digest rejects); the next one starts a new worker.
      if (worker === hw) worker = undefined;
      for (const h of hw.handlers.values()) h({});
    });
    return hw;
  };
  return () => {
    const hw = (worker ??= start());
    const job = hw.nextJob++;
    const ring = new SharedArrayBuffer(HASH_SLOTS * HASH_SLOT_BYTES);
    const free: number[] = Array.from({ length: HASH_SLOTS }, (_, i) => HASH_SLOTS - 1 - i);
    let ringSent = false;
    let waiting: (() => void) | undefined;
    let done: ((d: Uint8Array | undefined) => void) | undefined;
    let failed = false;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      hw.handlers.delete(job);
      hw.hold(-1);
    };
    hw.hold(1);
    hw.handlers.set(job, (m) => {
      if (m.back !== undefined) {
        free.push(m.back);
        const w = waiting;
        waiting = undefined;
        w?.();
      } else if (m.digest) {
        finish();
        done?.(new Uint8Array(m.digest));
      } else {
        failed = true;
        finish();
        waiting?.();
        done?.(undefined);
      }
    });
    let slotView: Uint8Array | undefined;
    let slot = 0;
    let fill = 0;
    const take = async (): Promise<Uint8Array> => {
      for (;;) {
        if (failed) throw new Error('the hashing thread failed');
        const b = free.pop();
        if (b !== undefined) {
          slot = b;
          return new Uint8Array(ring, b * HASH_SLOT_BYTES, HASH_SLOT_BYTES);
        }
        await new Promise<void>((r) => (waiting = r));
      }
    };
    const post = () => {
      if (!slotView || fill === 0) return;
      hw.post({ job, slot, slotBytes: HASH_SLOT_BYTES, length: fill, ...(ringSent ? {} : { ring }) });
      ringSent = true;
      slotView = undefined;
      fill = 0;
    };
    return {
      async update(data) {
        let off = 0;
        while (off < data.length) {
          slotView ??= await take();
          const n = Math.min(slotView.length - fill, data.length - off);
          slotView.set(data.subarray(off, off + n), fill);
          fill += n;
          off += n;
          if (fill === slotView.length) post();
        }
        if (fill >= HASH_POST_BYTES) post();
      },
      async digest() {
        post();
        const d = await new Promise<Uint8Array | undefined>((resolve) => {
          done = resolve;
          hw.post({ job, end: true });
        });
        if (!d) throw new Error('the hashing thread failed');
        return d;
      },
      abort() {
        if (finished) return;
        finish();
        hw.post({ job, end: true, abort: true });
      },
    };
  };
}

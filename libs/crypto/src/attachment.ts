import type * as NodeCrypto from 'node:crypto';
import type * as NodeWorkerThreads from 'node:worker_threads';
import { gcm } from '@noble/ciphers/aes.js';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { ascii, hkdf, randomBytes } from './primitives';
import { bytesEqual } from './bytes';
import { CryptoError } from './errors';

/**
 * Attachments (PROTOCOL.md §9): STREAM with chunked AES-256-GCM, counter nonces with a final-chunk
 * flag, the header as associated data, key commitment and PaddedSize padding. Encryption and
 * decryption are streams over `AsyncIterable<Uint8Array>`, so memory does not grow with the file.
 */

/** Plaintext bytes per chunk (log2 = 16). */
export const ATTACHMENT_CHUNK_BYTES = 65_536;
export const ATTACHMENT_TAG_BYTES = 16;
/** Ciphertext bytes per full chunk: chunk `i` starts at offset `56 + i·65552`. */
export const ATTACHMENT_SEALED_CHUNK_BYTES = ATTACHMENT_CHUNK_BYTES + ATTACHMENT_TAG_BYTES;
export const ATTACHMENT_HEADER_BYTES = 56;
export const ATTACHMENT_KEY_BYTES = 32;
export const ATTACHMENT_SALT_BYTES = 16;
/** The first 8 header bytes: "UMA1" || version 1 || log2 chunk 16 || u16 0. */
export const ATTACHMENT_MAGIC = Uint8Array.of(0x55, 0x4d, 0x41, 0x31, 0x01, 0x10, 0x00, 0x00);
/** Smallest padded size (an empty file is 541 zero bytes). */
export const ATTACHMENT_MIN_PADDED = 541;

/** PaddedSize(n): b = 541; while b < n: b += max(1, floor(b/20)). At most 5% overhead. */
export function paddedSize(n: number): number {
  if (!Number.isSafeInteger(n) || n < 0) throw new CryptoError('MALFORMED', 'size must be a non-negative safe integer');
  let b = ATTACHMENT_MIN_PADDED;
  while (b < n) b += Math.max(1, Math.floor(b / 20));
  return b;
}

/** Chunks, padded size and blob size for a plaintext of `size` bytes. */
export function attachmentLayout(size: number): { paddedSize: number; chunks: number; esize: number } {
  const p = paddedSize(size);
  const chunks = Math.ceil(p / ATTACHMENT_CHUNK_BYTES);
  return { paddedSize: p, chunks, esize: ATTACHMENT_HEADER_BYTES + p + ATTACHMENT_TAG_BYTES * chunks };
}

/** esize = 56 + PaddedSize(size) + 16·N. */
export function attachmentEsize(size: number): number {
  return attachmentLayout(size).esize;
}

/** nonce_i = 88-bit big-endian i || (0x01 if final else 0x00). */
export function attachmentNonce(i: number, final: boolean): Uint8Array {
  const n = new Uint8Array(12);
  let v = i;
  for (let k = 10; k >= 0 && v > 0; k--) {
    n[k] = v % 256;
    v = Math.floor(v / 256);
  }
  n[11] = final ? 1 : 0;
  return n;
}

export function deriveAttachmentKeys(key: Uint8Array, salt: Uint8Array): { commit: Uint8Array; payloadKey: Uint8Array } {
  if (!(key instanceof Uint8Array) || key.length !== ATTACHMENT_KEY_BYTES) throw new CryptoError('BAD_KEY', 'attachment key must be 32 bytes');
  if (!(salt instanceof Uint8Array) || salt.length !== ATTACHMENT_SALT_BYTES) throw new CryptoError('MALFORMED', 'attachment salt must be 16 bytes');
  return {
    commit: hkdf({ salt, ikm: key, info: ascii('umbra/v1/att/commit'), length: 32 }),
    payloadKey: hkdf({ salt, ikm: key, info: ascii('umbra/v1/att/payload'), length: 32 }),
  };
}

export function attachmentHeader(salt: Uint8Array, commit: Uint8Array): Uint8Array {
  const h = new Uint8Array(ATTACHMENT_HEADER_BYTES);
  h.set(ATTACHMENT_MAGIC, 0);
  h.set(salt, 8);
  h.set(commit, 24);
  return h;
}

// ---------------------------------------------------------------------------------------------
// Bulk AES-GCM and SHA-256 behind one small interface: node:crypto in Node, WebCrypto in browsers,
// @noble as the portable fallback. All three produce identical bytes.

/** AES-256-GCM under one key. `open` throws CryptoError('DECRYPT_FAILED') and never returns unauthenticated bytes. */
export interface AttachmentCipher {
  seal(nonce: Uint8Array, ad: Uint8Array, plaintext: Uint8Array): Promise<Uint8Array>;
  /** The same bytes as `seal`, as body and tag (saves joining them when the caller streams anyway). */
  sealParts?(nonce: Uint8Array, ad: Uint8Array, plaintext: Uint8Array): Promise<[Uint8Array, Uint8Array]>;
  open(nonce: Uint8Array, ad: Uint8Array, sealed: Uint8Array): Promise<Uint8Array>;
}

export interface IncrementalHash {
  update(data: Uint8Array): void;
  digest(): Uint8Array;
}

/** SHA-256 computed off the calling thread: `update` may wait (bounded memory), `digest` once at the end. */
export interface PipelinedHash {
  update(data: Uint8Array): void | Promise<void>;
  digest(): Promise<Uint8Array>;
  /** Releases the hash without a digest (the stream failed). */
  abort(): void;
}

export interface AeadProvider {
  readonly name: string;
  cipher(key: Uint8Array): Promise<AttachmentCipher>;
  sha256(): IncrementalHash;
  /** When present, blobs of at least PIPELINE_MIN_BYTES hash on another thread while this one encrypts. */
  pipelinedSha256?(): PipelinedHash;
}

/** Below this the hand-off costs more than hashing inline. */
export const PIPELINE_MIN_BYTES = 4 * 1024 * 1024;

/** A PipelinedHash over the inline one (providers without a worker; small blobs). */
function inlineHash(h: IncrementalHash): PipelinedHash {
  return { update: (d) => h.update(d), digest: async () => h.digest(), abort: () => undefined };
}

function nobleSha256Incremental(): IncrementalHash {
  const h = nobleSha256.create();
  return { update: (d) => void h.update(d), digest: () => h.digest() };
}

/** Pure JavaScript: runs anywhere, about 20× slower than the native ones. */
export const nobleAeadProvider: AeadProvider = {
  name: 'noble',
  async cipher(key) {
    return {
      seal: async (nonce, ad, pt) => gcm(key, nonce, ad).encrypt(pt),
      open: async (nonce, ad, sealed) => {
        try {
          return gcm(key, nonce, ad).decrypt(sealed);
        } catch {
          throw new CryptoError('DECRYPT_FAILED', 'attachment chunk failed authentication');
        }
      },
    };
  },
  sha256: nobleSha256Incremental,
};

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

/** Bytes handed to the hashing thread at once, and how many such batches may be in flight (memory: their product). */
const HASH_BATCH_BYTES = 1024 * 1024;
const HASH_BATCHES = 4;

interface HashWorker {
  post(msg: unknown, transfer?: ArrayBuffer[]): void;
  /** Jobs in progress: the worker keeps the process alive only while there are some. */
  hold(delta: 1 | -1): void;
  handlers: Map<number, (m: { back?: number; digest?: Uint8Array }) => void>;
  nextJob: number;
}

/**
 * SHA-256 on one shared worker thread (node:crypto there too), fed batches of HASH_BATCH_BYTES through a
 * SharedArrayBuffer ring: at most HASH_BATCHES × 1 MiB per hash in flight.
 */
function workerSha256Factory(wt: typeof NodeWorkerThreads): () => PipelinedHash {
  let worker: HashWorker | undefined;
  const start = (): HashWorker => {
    const w = new wt.Worker(HASH_WORKER_SOURCE, { eval: true });
    w.unref();
    let active = 0;
    const hw: HashWorker = {
      post: (msg, transfer) => w.postMessage(msg, transfer ?? []),
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
    // One SharedArrayBuffer of HASH_BATCHES slots: this thread copies sealed bytes into a free slot, the worker
    // hashes the slot in place and hands its number back (no transfer, no second copy).
    const ring = new SharedArrayBuffer(HASH_BATCHES * HASH_BATCH_BYTES);
    const free: number[] = Array.from({ length: HASH_BATCHES }, (_, i) => HASH_BATCHES - 1 - i);
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
    let batch: Uint8Array | undefined;
    let slot = 0;
    let fill = 0;
    const take = async (): Promise<Uint8Array> => {
      for (;;) {
        if (failed) throw new Error('the hashing thread failed');
        const b = free.pop();
        if (b !== undefined) {
          slot = b;
          return new Uint8Array(ring, b * HASH_BATCH_BYTES, HASH_BATCH_BYTES);
        }
        await new Promise<void>((r) => (waiting = r));
      }
    };
    const flush = () => {
      if (!batch || fill === 0) return;
      hw.post({ job, slot, slotBytes: HASH_BATCH_BYTES, length: fill, ...(ringSent ? {} : { ring }) });
      ringSent = true;
      batch = undefined;
      fill = 0;
    };
    return {
      async update(data) {
        let off = 0;
        while (off < data.length) {
          batch ??= await take();
          const n = Math.min(batch.length - fill, data.length - off);
          batch.set(data.subarray(off, off + n), fill);
          fill += n;
          off += n;
          if (fill === batch.length) flush();
        }
      },
      async digest() {
        flush();
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

/** node:crypto (OpenSSL): the fastest in Node. With worker_threads, large blobs hash on a worker while this thread encrypts. */
export function nodeAeadProvider(nc: typeof NodeCrypto, wt?: typeof NodeWorkerThreads): AeadProvider {
  const pipelined = wt ? workerSha256Factory(wt) : undefined;
  return {
    name: 'node:crypto',
    ...(pipelined ? { pipelinedSha256: pipelined } : {}),
    async cipher(key) {
      const k = nc.createSecretKey(key);
      return {
        sealParts: async (nonce, ad, pt) => {
          const c = nc.createCipheriv('aes-256-gcm', k, nonce);
          c.setAAD(ad);
          const body = c.update(pt);
          c.final();
          return [body, c.getAuthTag()];
        },
        seal: async (nonce, ad, pt) => {
          const c = nc.createCipheriv('aes-256-gcm', k, nonce);
          c.setAAD(ad);
          const body = c.update(pt);
          c.final();
          // allocUnsafe: every byte is written below (a zero-filled array costs a memset per chunk).
          const out = Buffer.allocUnsafe(body.length + ATTACHMENT_TAG_BYTES);
          out.set(body, 0);
          out.set(c.getAuthTag(), body.length);
          return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
        },
        open: async (nonce, ad, sealed) => {
          if (sealed.length < ATTACHMENT_TAG_BYTES) throw new CryptoError('DECRYPT_FAILED', 'attachment chunk too short');
          try {
            const d = nc.createDecipheriv('aes-256-gcm', k, nonce);
            d.setAAD(ad);
            d.setAuthTag(sealed.subarray(sealed.length - ATTACHMENT_TAG_BYTES));
            const body = d.update(sealed.subarray(0, sealed.length - ATTACHMENT_TAG_BYTES));
            d.final();
            return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
          } catch {
            throw new CryptoError('DECRYPT_FAILED', 'attachment chunk failed authentication');
          }
        },
      };
    },
    sha256() {
      const h = nc.createHash('sha256');
      return { update: (d) => void h.update(d), digest: () => new Uint8Array(h.digest()) };
    },
  };
}

/** WebCrypto (browsers, Deno, workers). SHA-256 stays incremental with @noble (SubtleCrypto has no streaming digest). */
export function webCryptoAeadProvider(subtle: SubtleCrypto): AeadProvider {
  return {
    name: 'webcrypto',
    async cipher(key) {
      const k = await subtle.importKey('raw', key as BufferSource, 'AES-GCM', false, ['encrypt', 'decrypt']);
      return {
        seal: async (nonce, ad, pt) =>
          new Uint8Array(await subtle.encrypt({ name: 'AES-GCM', iv: nonce as BufferSource, additionalData: ad as BufferSource, tagLength: 128 }, k, pt as BufferSource)),
        open: async (nonce, ad, sealed) => {
          try {
            return new Uint8Array(await subtle.decrypt({ name: 'AES-GCM', iv: nonce as BufferSource, additionalData: ad as BufferSource, tagLength: 128 }, k, sealed as BufferSource));
          } catch {
            throw new CryptoError('DECRYPT_FAILED', 'attachment chunk failed authentication');
          }
        },
      };
    },
    sha256: nobleSha256Incremental,
  };
}

let defaultProvider: AeadProvider | undefined;

/**
 * node:crypto when running in Node (found without importing it, so bundles stay browser-safe), else WebCrypto, else @noble.
 * In Node with UMBRA_HASH_WORKER=1, blobs of PIPELINE_MIN_BYTES and more hash on a worker thread.
 */
export function defaultAeadProvider(): AeadProvider {
  if (defaultProvider) return defaultProvider;
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const nc = proc?.getBuiltinModule?.('node:crypto') as typeof NodeCrypto | undefined;
  // Hashing on a worker pays only with a core to spare: on the shared 2-core box it measured slower than
  // inline (docs/benchmarks.md, "Client-side crypto"), so it is opt-in: UMBRA_HASH_WORKER=1.
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const wt = env?.UMBRA_HASH_WORKER === '1' ? (proc?.getBuiltinModule?.('node:worker_threads') as typeof NodeWorkerThreads | undefined) : undefined;
  const subtle = (globalThis as { crypto?: Crypto }).crypto?.subtle;
  defaultProvider = nc ? nodeAeadProvider(nc, wt) : subtle ? webCryptoAeadProvider(subtle) : nobleAeadProvider;
  return defaultProvider;
}

// ---------------------------------------------------------------------------------------------

export type ByteSource = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

export interface EncryptAttachmentOptions {
  /** 32 bytes; random when absent (tests and vectors fix it). */
  key?: Uint8Array;
  /** 16 bytes; random when absent. */
  salt?: Uint8Array;
  provider?: AeadProvider;
}

/**
 * One attachment being encrypted. `stream(source)` yields the blob (header, then one sealed chunk
 * at a time, possibly as body and tag); the source must yield exactly `size` bytes. `digest` is available once the stream
 * has finished.
 */
export class AttachmentEncryptor {
  readonly key: Uint8Array;
  readonly salt: Uint8Array;
  readonly esize: number;
  readonly chunks: number;
  private readonly paddedSize: number;
  private readonly provider: AeadProvider;
  private digestValue: Uint8Array | undefined;
  private used = false;

  constructor(
    readonly size: number,
    opts: EncryptAttachmentOptions = {},
  ) {
    const layout = attachmentLayout(size);
    this.esize = layout.esize;
    this.chunks = layout.chunks;
    this.paddedSize = layout.paddedSize;
    this.key = opts.key ?? randomBytes(ATTACHMENT_KEY_BYTES);
    this.salt = opts.salt ?? randomBytes(ATTACHMENT_SALT_BYTES);
    this.provider = opts.provider ?? defaultAeadProvider();
    deriveAttachmentKeys(this.key, this.salt);
  }

  /** SHA-256 of the whole blob; throws until the stream has been read to its end. */
  get digest(): Uint8Array {
    if (!this.digestValue) throw new Error('attachment digest is known only after the whole blob was produced');
    return this.digestValue;
  }

  async *stream(source: ByteSource): AsyncGenerator<Uint8Array, void, undefined> {
    if (this.used) throw new Error('an AttachmentEncryptor encrypts once (nonces are per key)');
    this.used = true;
    const { commit, payloadKey } = deriveAttachmentKeys(this.key, this.salt);
    const header = attachmentHeader(this.salt, commit);
    const cipher = await this.provider.cipher(payloadKey);
    const hash = this.esize >= PIPELINE_MIN_BYTES && this.provider.pipelinedSha256 ? this.provider.pipelinedSha256() : inlineHash(this.provider.sha256());
    let complete = false;
    try {
      await hash.update(header);
      yield header;

      const lastLen = this.paddedSize - ATTACHMENT_CHUNK_BYTES * (this.chunks - 1);
      let buf = new Uint8Array(this.chunks === 1 ? lastLen : ATTACHMENT_CHUNK_BYTES);
      let fill = 0;
      let index = 0;
      let consumed = 0;
      const seal = async (plain: Uint8Array): Promise<Uint8Array[]> => {
        const final = index === this.chunks - 1;
        const nonce = attachmentNonce(index, final);
        const sealed = cipher.sealParts ? await cipher.sealParts(nonce, header, plain) : [await cipher.seal(nonce, header, plain)];
        for (const part of sealed) await hash.update(part);
        index++;
        if (plain === buf) {
          fill = 0;
          if (index === this.chunks - 1) buf = new Uint8Array(lastLen);
          else buf.fill(0);
        } else if (index === this.chunks - 1) {
          buf = new Uint8Array(lastLen);
        }
        return sealed;
      };

      for await (const piece of source) {
        if (consumed + piece.length > this.size) throw new CryptoError('MALFORMED', `source is longer than the declared ${this.size} bytes`);
        consumed += piece.length;
        let off = 0;
        while (off < piece.length) {
          // A whole non-final chunk inside the piece is sealed from it directly (no copy into `buf`).
          if (fill === 0 && index < this.chunks - 1 && piece.length - off >= ATTACHMENT_CHUNK_BYTES) {
            yield* await seal(piece.subarray(off, off + ATTACHMENT_CHUNK_BYTES));
            off += ATTACHMENT_CHUNK_BYTES;
            continue;
          }
          const n = Math.min(buf.length - fill, piece.length - off);
          buf.set(piece.subarray(off, off + n), fill);
          fill += n;
          off += n;
          // A full chunk is sealed only when it is not the last one: the last also holds padding.
          if (fill === buf.length && index < this.chunks - 1) yield* await seal(buf);
        }
      }
      if (consumed !== this.size) throw new CryptoError('MALFORMED', `source ended after ${consumed} of ${this.size} bytes`);
      // The rest is zero padding: the current buffer is already zero past `fill`.
      while (index < this.chunks) yield* await seal(buf);
      this.digestValue = await hash.digest();
      complete = true;
    } finally {
      if (!complete) hash.abort();
    }
  }
}

/** What decryption needs from a pointer (PROTOCOL.md §9). */
export interface AttachmentSecrets {
  key: Uint8Array;
  digest: Uint8Array;
  size: number;
  esize: number;
}

/** Reads exact byte counts from a stream of arbitrarily sized pieces. */
class ExactReader {
  private readonly it: AsyncIterator<Uint8Array> | Iterator<Uint8Array>;
  private pending: Uint8Array = new Uint8Array(0);
  private done = false;

  constructor(source: ByteSource) {
    this.it = Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : (source as Iterable<Uint8Array>)[Symbol.iterator]();
  }

  /** Up to `n` bytes; fewer only at EOF. */
  async read(n: number): Promise<Uint8Array> {
    if (this.pending.length >= n) {
      const out = this.pending.subarray(0, n);
      this.pending = this.pending.subarray(n);
      return out;
    }
    const out = new Uint8Array(n);
    let fill = this.pending.length;
    out.set(this.pending, 0);
    this.pending = new Uint8Array(0);
    while (fill < n && !this.done) {
      const r = await this.it.next();
      if (r.done) {
        this.done = true;
        break;
      }
      const piece = r.value;
      const take = Math.min(n - fill, piece.length);
      out.set(piece.subarray(0, take), fill);
      fill += take;
      if (take < piece.length) this.pending = piece.subarray(take);
    }
    return fill === n ? out : out.subarray(0, fill);
  }

  /** True when at least one more byte follows. */
  async hasMore(): Promise<boolean> {
    while (this.pending.length === 0 && !this.done) {
      const r = await this.it.next();
      if (r.done) this.done = true;
      else this.pending = r.value;
    }
    return this.pending.length > 0;
  }
}

/**
 * Decrypts a blob as it streams in and yields plaintext one authenticated chunk at a time (never
 * more than one chunk is held). Rejects, with a CryptoError: a pointer whose esize does not match
 * its size (MALFORMED), a bad header (UNSUPPORTED_VERSION / MALFORMED), a wrong key commitment
 * (BAD_COMMITMENT), a tampered or reordered chunk (DECRYPT_FAILED), a blob that ends early
 * (TRUNCATED) or goes on after its final chunk (MALFORMED), non-zero padding (MALFORMED) and a
 * wrong digest (BAD_DIGEST, after the last chunk: callers discard what they wrote).
 */
export async function* decryptAttachment(source: ByteSource, secrets: AttachmentSecrets, opts: { provider?: AeadProvider } = {}): AsyncGenerator<Uint8Array, void, undefined> {
  const { size, esize } = secrets;
  if (!Number.isSafeInteger(size) || size < 0) throw new CryptoError('MALFORMED', 'bad plaintext size');
  const layout = attachmentLayout(size);
  if (esize !== layout.esize) throw new CryptoError('MALFORMED', `esize ${esize} does not match size ${size} (expected ${layout.esize})`);
  if (!(secrets.digest instanceof Uint8Array) || secrets.digest.length !== 32) throw new CryptoError('MALFORMED', 'digest must be 32 bytes');
  const provider = opts.provider ?? defaultAeadProvider();
  const reader = new ExactReader(source);
  const hash = esize >= PIPELINE_MIN_BYTES && provider.pipelinedSha256 ? provider.pipelinedSha256() : inlineHash(provider.sha256());
  let complete = false;
  try {
    const header = (await reader.read(ATTACHMENT_HEADER_BYTES)).slice();
    if (header.length < ATTACHMENT_HEADER_BYTES) throw new CryptoError('TRUNCATED', 'blob shorter than its header');
    if (!bytesEqual(header.subarray(0, 4), ATTACHMENT_MAGIC.subarray(0, 4))) throw new CryptoError('MALFORMED', 'not an attachment blob (magic)');
    if (!bytesEqual(header.subarray(0, 8), ATTACHMENT_MAGIC)) throw new CryptoError('UNSUPPORTED_VERSION', 'unsupported attachment version, chunk size or flags');
    const salt = header.subarray(8, 24);
    const { commit, payloadKey } = deriveAttachmentKeys(secrets.key, salt);
    if (!bytesEqual(commit, header.subarray(24, 56))) throw new CryptoError('BAD_COMMITMENT', 'key commitment does not match the key');
    await hash.update(header);
    const cipher = await provider.cipher(payloadKey);

    const lastSealed = layout.paddedSize - ATTACHMENT_CHUNK_BYTES * (layout.chunks - 1) + ATTACHMENT_TAG_BYTES;
    let released = 0;
    for (let i = 0; i < layout.chunks; i++) {
      const final = i === layout.chunks - 1;
      const want = final ? lastSealed : ATTACHMENT_SEALED_CHUNK_BYTES;
      const sealed = await reader.read(want);
      if (sealed.length < want) throw new CryptoError('TRUNCATED', `blob ends inside chunk ${i} of ${layout.chunks}`);
      await hash.update(sealed);
      const plain = await cipher.open(attachmentNonce(i, final), header, sealed);
      const keep = Math.min(plain.length, size - released);
      for (let k = keep; k < plain.length; k++) if (plain[k] !== 0) throw new CryptoError('MALFORMED', 'non-zero padding');
      released += keep;
      if (keep > 0) yield keep === plain.length ? plain : plain.subarray(0, keep);
    }
    if (await reader.hasMore()) throw new CryptoError('MALFORMED', 'data after the final chunk');
    const digest = await hash.digest();
    complete = true;
    if (!bytesEqual(digest, secrets.digest)) throw new CryptoError('BAD_DIGEST', 'blob digest does not match the pointer');
  } finally {
    if (!complete) hash.abort();
  }
}

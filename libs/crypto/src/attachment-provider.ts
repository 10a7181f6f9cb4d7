import type * as NodeCrypto from 'node:crypto';
import type * as NodeWorkerThreads from 'node:worker_threads';
import { gcm } from '@noble/ciphers/aes.js';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { CryptoError } from './errors';
import { ATTACHMENT_TAG_BYTES } from './attachment-format';
import { workerSha256Factory } from './attachment-hash-worker';

// Bulk AES-GCM and SHA-256 behind one small interface: node:crypto in Node, WebCrypto in browsers,
// @noble as the portable fallback. All three produce identical bytes.

/** AES-256-GCM under one key. `open` throws CryptoError('DECRYPT_FAILED') and never returns unauthenticated bytes. */
export interface AttachmentCipher {
  seal(nonce: Uint8Array, ad: Uint8Array, plaintext: Uint8Array): Promise<Uint8Array>;
  /**
   * The same bytes as `seal`, computed before it returns, as consecutive pieces (node:crypto: body and tag,
   * not joined). Synchronous ciphers offer it so a batch of chunks costs no promise per chunk.
   */
  sealNow?(nonce: Uint8Array, ad: Uint8Array, plaintext: Uint8Array): readonly Uint8Array[];
  open(nonce: Uint8Array, ad: Uint8Array, sealed: Uint8Array): Promise<Uint8Array>;
}

export interface IncrementalHash {
  update(data: Uint8Array): void;
  digest(): Uint8Array;
}

/** SHA-256 computed off the calling thread: `update` may wait (bounded memory), `digest` once at the end. */
export interface PipelinedHash {
  /** `data` may be reused by the caller as soon as the returned promise (if any) settles. */
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
export function inlineHash(h: IncrementalHash): PipelinedHash {
  return { update: (d) => h.update(d), digest: async () => h.digest(), abort: () => undefined };
}

function nobleSha256Incremental(): IncrementalHash {
  const h = nobleSha256.create();
  return { update: (d) => void h.update(d), digest: () => h.digest() };
}

function decryptFailed(): CryptoError {
  return new CryptoError('DECRYPT_FAILED', 'attachment chunk failed authentication');
}

/** Pure JavaScript: runs anywhere, about 20× slower than the native ones. */
export const nobleAeadProvider: AeadProvider = {
  name: 'noble',
  async cipher(key) {
    return {
      seal: async (nonce, ad, pt) => gcm(key, nonce, ad).encrypt(pt),
      sealNow: (nonce, ad, pt) => [gcm(key, nonce, ad).encrypt(pt)],
      open: async (nonce, ad, sealed) => {
        try {
          return gcm(key, nonce, ad).decrypt(sealed);
        } catch {
          throw decryptFailed();
        }
      },
    };
  },
  sha256: nobleSha256Incremental,
};

/** node:crypto (OpenSSL): the fastest in Node. With worker_threads, large blobs hash on a worker while this thread encrypts. */
export function nodeAeadProvider(nc: typeof NodeCrypto, wt?: typeof NodeWorkerThreads): AeadProvider {
  const pipelined = wt ? workerSha256Factory(wt) : undefined;
  return {
    name: 'node:crypto',
    ...(pipelined ? { pipelinedSha256: pipelined } : {}),
    async cipher(key) {
      const k = nc.createSecretKey(key);
      // A GCM context cannot take a new IV, so every chunk needs its own cipher (about 2 µs of the ~27 µs of a 64 KiB chunk).
      const sealNow = (nonce: Uint8Array, ad: Uint8Array, pt: Uint8Array): [Uint8Array, Uint8Array] => {
        const c = nc.createCipheriv('aes-256-gcm', k, nonce);
        c.setAAD(ad);
        const body = c.update(pt);
        c.final();
        return [body, c.getAuthTag()];
      };
      return {
        sealNow,
        seal: async (nonce, ad, pt) => {
          const [body, tag] = sealNow(nonce, ad, pt);
          // allocUnsafe: every byte is written below (a zero-filled array costs a memset per chunk).
          const out = Buffer.allocUnsafe(body.length + tag.length);
          out.set(body, 0);
          out.set(tag, body.length);
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
            throw decryptFailed();
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

/**
 * WebCrypto (browsers, Deno, workers). No `sealNow`: `encrypt` is asynchronous, so the encryptor starts a
 * batch of chunks at once (the browser may run them in parallel). SHA-256 stays incremental with @noble
 * (SubtleCrypto has no streaming digest).
 */
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
            throw decryptFailed();
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

/**
 * Attachments hashed on a worker thread (nodeAeadProvider with worker_threads, opt-in) give the same blob and
 * digest as the inline providers, decrypt and detect tampering the same way, share the worker between
 * concurrent streams, and release it when a stream fails. Reused buffers (`reuseOutput`, a source that
 * overwrites its buffer) give the same blob with every provider.
 */
import * as nodeCrypto from 'node:crypto';
import * as workerThreads from 'node:worker_threads';
import {
  AttachmentEncryptor,
  PIPELINE_MIN_BYTES,
  decryptAttachment,
  defaultAeadProvider,
  nobleAeadProvider,
  nodeAeadProvider,
  webCryptoAeadProvider,
  type AeadProvider,
} from './attachment';
import { bytesEqual } from './bytes';
import { cryptoOutcome } from './testing/fixtures';

const KEY = new Uint8Array(32).fill(9);
const SALT = new Uint8Array(16).fill(4);
const piped = nodeAeadProvider(nodeCrypto, workerThreads);
const inline = nodeAeadProvider(nodeCrypto);

function pattern(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >> 13)) % 251;
  return b;
}

/** Pieces of varying sizes, some larger than a chunk (the encryptor seals from them directly). */
function* pieces(b: Uint8Array): Generator<Uint8Array> {
  const sizes = [1, 65_536, 200_000, 7, 65_535, 1 << 20, 3_000];
  let o = 0;
  for (let i = 0; o < b.length; i++) {
    const n = Math.min(sizes[i % sizes.length]!, b.length - o);
    yield b.subarray(o, o + n);
    o += n;
  }
}

/** Pieces of `b` in one buffer that is overwritten (with garbage first) each time the next piece is asked for. */
async function* oneBuffer(b: Uint8Array, sizes: number[]): AsyncGenerator<Uint8Array> {
  const buf = new Uint8Array(Math.max(...sizes));
  let o = 0;
  for (let i = 0; o < b.length; i++) {
    const n = Math.min(sizes[i % sizes.length]!, b.length - o);
    buf.fill(0xee);
    await new Promise((r) => setImmediate(r));
    buf.set(b.subarray(o, o + n));
    yield buf.subarray(0, n);
    o += n;
  }
  buf.fill(0xdd);
}

async function encrypt(pt: Uint8Array, provider: AeadProvider, opts: { reuseOutput?: boolean; source?: AsyncIterable<Uint8Array> } = {}): Promise<{ blob: Uint8Array; digest: Uint8Array }> {
  const enc = new AttachmentEncryptor(pt.length, { key: KEY, salt: SALT, provider, reuseOutput: opts.reuseOutput ?? false });
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const p of enc.stream(opts.source ?? pieces(pt))) {
    parts.push(p.slice());
    n += p.length;
  }
  const blob = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    blob.set(p, o);
    o += p.length;
  }
  return { blob, digest: enc.digest };
}

async function decrypt(blob: Uint8Array, digest: Uint8Array, size: number, provider: AeadProvider): Promise<Uint8Array> {
  const out = new Uint8Array(size);
  let o = 0;
  for await (const p of decryptAttachment(pieces(blob), { key: KEY, digest, size, esize: blob.length }, { provider })) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

describe('attachments with SHA-256 on a worker thread', () => {
  it('is opt-in (UMBRA_HASH_WORKER=1): the default hashes inline', () => {
    expect(defaultAeadProvider().name).toBe('node:crypto');
    expect(defaultAeadProvider().pipelinedSha256).toBeUndefined();
    expect(piped.pipelinedSha256).toBeDefined();
    expect(inline.pipelinedSha256).toBeUndefined();
  });

  it.each([PIPELINE_MIN_BYTES - 60_000, PIPELINE_MIN_BYTES + 1, 9 * 1024 * 1024 + 12_345])('%d bytes: blob and digest identical to the inline providers, and it decrypts', async (size) => {
    const pt = pattern(size);
    const a = await encrypt(pt, piped);
    const b = await encrypt(pt, inline);
    expect(a.blob.length).toBe(b.blob.length);
    expect(bytesEqual(a.blob, b.blob)).toBe(true);
    expect(bytesEqual(a.digest, b.digest)).toBe(true);
    expect(bytesEqual(a.digest, new Uint8Array(nodeCrypto.createHash('sha256').update(a.blob).digest()))).toBe(true);
    if (size < PIPELINE_MIN_BYTES + 10) {
      // Cross-checked with pure JS too (slow: only for one size).
      const c = await encrypt(pt, nobleAeadProvider);
      expect(bytesEqual(c.blob, a.blob)).toBe(true);
    }
    expect(bytesEqual(await decrypt(a.blob, a.digest, size, piped), pt)).toBe(true);
  });

  it('decryption with the worker still rejects a wrong digest and a tampered chunk', async () => {
    const size = PIPELINE_MIN_BYTES + 100_000;
    const { blob, digest } = await encrypt(pattern(size), piped);
    const wrong = digest.slice();
    wrong[0]! ^= 1;
    const outcome = async (b: Uint8Array, d: Uint8Array) => {
      try {
        await decrypt(b, d, size, piped);
        return 'ok';
      } catch (err) {
        return cryptoOutcome(() => {
          throw err;
        });
      }
    };
    expect(await outcome(blob, wrong)).toBe('BAD_DIGEST');
    const tampered = blob.slice();
    tampered[56 + 3 * 65_552 + 10]! ^= 0x40;
    expect(await outcome(tampered, digest)).toBe('DECRYPT_FAILED');
    expect(await outcome(blob, digest)).toBe('ok');
  });

  it('concurrent streams share the worker without mixing their hashes', async () => {
    const sizes = [PIPELINE_MIN_BYTES + 5, PIPELINE_MIN_BYTES * 2 + 77, PIPELINE_MIN_BYTES + 65_536 * 3];
    const results = await Promise.all(sizes.map((s) => encrypt(pattern(s), piped)));
    for (const r of results) expect(bytesEqual(r.digest, new Uint8Array(nodeCrypto.createHash('sha256').update(r.blob).digest()))).toBe(true);
  });

  it('a source that fails mid-stream releases its hash, and the next stream works', async () => {
    const size = PIPELINE_MIN_BYTES * 2;
    const enc = new AttachmentEncryptor(size, { key: KEY, salt: SALT, provider: piped });
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array(PIPELINE_MIN_BYTES + 3);
      throw new Error('disk gone');
    }
    await expect(
      (async () => {
        for await (const p of enc.stream(failing())) void p;
      })(),
    ).rejects.toThrow('disk gone');
    expect(() => enc.digest).toThrow();
    const pt = pattern(PIPELINE_MIN_BYTES + 9);
    const again = await encrypt(pt, piped);
    expect(bytesEqual(again.blob, (await encrypt(pt, inline)).blob)).toBe(true);
  });
});

describe('attachments with reused buffers', () => {
  const providers: AeadProvider[] = [inline, piped, webCryptoAeadProvider(globalThis.crypto.subtle), nobleAeadProvider];

  it.each(providers.map((p, i) => [i === 1 ? 'node:crypto + worker' : p.name, p] as const))('%s: reuseOutput and a source reusing its buffer give the same blob and digest', async (_name, provider) => {
    const size = provider === nobleAeadProvider ? 1_300_000 : PIPELINE_MIN_BYTES + 1_234_567;
    const pt = pattern(size);
    const want = await encrypt(pt, inline);
    for (const sizes of [[1 << 20], [65_536 * 3 + 5, 100, 70_000], [size]]) {
      for (const reuseOutput of [false, true]) {
        const got = await encrypt(pt, provider, { reuseOutput, source: oneBuffer(pt, sizes) });
        expect(bytesEqual(got.blob, want.blob)).toBe(true);
        expect(bytesEqual(got.digest, want.digest)).toBe(true);
      }
    }
  });

  it('with reuseOutput every piece is a view of the same buffer; without, every piece is its own', async () => {
    const size = 40 * 65_536 + 3;
    const seen = async (reuseOutput: boolean) => {
      const enc = new AttachmentEncryptor(size, { key: KEY, salt: SALT, provider: inline, reuseOutput });
      const buffers = new Set<ArrayBufferLike>();
      let pieces = 0;
      for await (const p of enc.stream([pattern(size)])) {
        buffers.add(p.buffer);
        pieces++;
      }
      return { buffers: buffers.size, pieces };
    };
    expect(await seen(true)).toEqual({ buffers: 1, pieces: 3 });
    const fresh = await seen(false);
    expect(fresh.buffers).toBe(fresh.pieces);
  });
});

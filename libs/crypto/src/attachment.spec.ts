import { readFileSync } from 'node:fs';
import * as nodeCrypto from 'node:crypto';
import path from 'node:path';
import {
  ATTACHMENT_HEADER_BYTES,
  ATTACHMENT_SEALED_CHUNK_BYTES,
  AttachmentEncryptor,
  attachmentEsize,
  attachmentLayout,
  decryptAttachment,
  defaultAeadProvider,
  nobleAeadProvider,
  nodeAeadProvider,
  paddedSize,
  webCryptoAeadProvider,
  type AeadProvider,
  type AttachmentSecrets,
} from './attachment';
import { bytesEqual, hexDecode, hexEncode } from './bytes';
import { CryptoError } from './errors';
const randomBytes = (n: number): Uint8Array => new Uint8Array(nodeCrypto.randomBytes(n));

interface Vectors {
  key: string;
  salt: string;
  paddedSize: [number, number][];
  blobs: { size: number; paddedSize: number; chunks: number; esize: number; digest: string; header: string; blob?: string; firstSealedChunk?: string }[];
  nonzeroPadding: { size: number; blob: string; digest: string };
  negative: { name: string; base: number | 'nonzero'; op: Record<string, unknown>; error: string }[];
}

const vectors = JSON.parse(readFileSync(path.resolve(process.cwd(), 'libs/crypto/vectors/attachments.json'), 'utf8')) as Vectors;
const KEY = hexDecode(vectors.key);
const SALT = hexDecode(vectors.salt);
const PROVIDERS: AeadProvider[] = [nodeAeadProvider(nodeCrypto), webCryptoAeadProvider(globalThis.crypto.subtle), nobleAeadProvider];

const pattern = (n: number) => Uint8Array.from({ length: n }, (_, j) => j % 251);

/** Splits bytes into pieces of random sizes (streams never arrive chunk-aligned). */
function* pieces(bytes: Uint8Array, max = 70_000): Generator<Uint8Array> {
  let o = 0;
  while (o < bytes.length) {
    const n = 1 + Math.floor(Math.random() * max);
    yield bytes.subarray(o, o + n);
    o += n;
  }
}

async function collect(it: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const p of it) parts.push(p);
  return Buffer.concat(parts);
}

async function encrypt(pt: Uint8Array, opts: { provider?: AeadProvider; key?: Uint8Array; salt?: Uint8Array } = {}) {
  const enc = new AttachmentEncryptor(pt.length, { key: opts.key ?? KEY, salt: opts.salt ?? SALT, ...(opts.provider ? { provider: opts.provider } : {}) });
  const blob = await collect(enc.stream(pieces(pt)));
  return { blob, digest: enc.digest, key: enc.key, esize: enc.esize };
}

async function decryptError(blob: Uint8Array, secrets: AttachmentSecrets, provider?: AeadProvider): Promise<{ code: string | undefined; released: number }> {
  let released = 0;
  try {
    for await (const p of decryptAttachment(pieces(blob), secrets, provider ? { provider } : {})) released += p.length;
  } catch (err) {
    return { code: err instanceof CryptoError ? err.code : `not a CryptoError: ${String(err)}`, released };
  }
  return { code: undefined, released };
}

describe('attachments (PROTOCOL.md §9)', () => {
  it('PaddedSize matches the known values and stays within 5%', () => {
    expect(paddedSize(542)).toBe(568);
    expect(paddedSize(1_000_000)).toBe(1_022_755);
    expect(paddedSize(2 ** 32)).toBe(4_296_726_916);
    expect(paddedSize(0)).toBe(541);
    for (const [n, p] of vectors.paddedSize) expect(paddedSize(n)).toBe(p);
    let prev = 0;
    for (let n = 0; n < 200_000; n += 997) {
      const p = paddedSize(n);
      expect(p).toBeGreaterThanOrEqual(n);
      expect(p).toBeGreaterThanOrEqual(prev);
      if (n > 541) expect(p).toBeLessThanOrEqual(n * 1.05 + 1);
      prev = p;
    }
    expect(() => paddedSize(-1)).toThrow(CryptoError);
  });

  it('an empty file is a 613-byte blob, and esize = 56 + PaddedSize + 16·N', async () => {
    const { blob } = await encrypt(new Uint8Array(0));
    expect(blob.length).toBe(613);
    expect(attachmentEsize(0)).toBe(613);
    expect(attachmentLayout(65_536 * 3 + 1).chunks).toBe(Math.ceil(paddedSize(65_536 * 3 + 1) / 65_536));
  });

  it.each([0, 1, 541, 542, 65_535, 65_536, 65_537, 3 * 65_536 + 1, 1_000_003])('round-trips %d bytes with every provider, byte-identical across providers', async (size) => {
    const pt = randomBytes(size);
    const outputs: Uint8Array[] = [];
    for (const provider of PROVIDERS) {
      const { blob, digest } = await encrypt(pt, { provider });
      expect(blob.length).toBe(attachmentEsize(size));
      outputs.push(blob);
      for (const reader of PROVIDERS) {
        const back = await collect(decryptAttachment(pieces(blob), { key: KEY, digest, size, esize: blob.length }, { provider: reader }));
        expect(bytesEqual(back, pt)).toBe(true);
      }
    }
    for (const o of outputs) expect(bytesEqual(o, outputs[0]!)).toBe(true);
  });

  it('uses node:crypto by default in Node', () => {
    expect(defaultAeadProvider().name).toBe('node:crypto');
  });

  it('refuses a source shorter or longer than the declared size', async () => {
    const short = new AttachmentEncryptor(10);
    await expect(collect(short.stream([new Uint8Array(9)]))).rejects.toMatchObject({ code: 'MALFORMED' });
    const long = new AttachmentEncryptor(10);
    await expect(collect(long.stream([new Uint8Array(11)]))).rejects.toMatchObject({ code: 'MALFORMED' });
    const once = new AttachmentEncryptor(1);
    await collect(once.stream([new Uint8Array(1)]));
    await expect(collect(once.stream([new Uint8Array(1)]))).rejects.toThrow(/once/);
  });

  it('releases only authenticated chunks: a tampered third chunk stops after two', async () => {
    const pt = pattern(4 * 65_536);
    const { blob, digest } = await encrypt(pt);
    blob[ATTACHMENT_HEADER_BYTES + 2 * ATTACHMENT_SEALED_CHUNK_BYTES + 5]! ^= 1;
    const r = await decryptError(blob, { key: KEY, digest, size: pt.length, esize: blob.length });
    expect(r).toEqual({ code: 'DECRYPT_FAILED', released: 2 * 65_536 });
  });

  it('streams 48 MiB: never reads more than one source block and one chunk ahead of what it has emitted', async () => {
    // A deterministic form of "memory does not grow with the file": the encryptor's lookahead is bounded.
    const size = 48 * 1024 * 1024;
    const block = randomBytes(1 << 20);
    let pulled = 0;
    async function* source() {
      for (let i = 0; i < size / block.length; i++) {
        pulled += block.length;
        yield block;
      }
    }
    const enc = new AttachmentEncryptor(size);
    let emitted = 0;
    let maxAhead = 0;
    for await (const p of enc.stream(source())) {
      emitted += p.length;
      // Plaintext bytes covered by what was emitted so far: each sealed chunk carries a 16-byte tag.
      const covered = Math.max(0, emitted - 56) * (65_536 / 65_552);
      maxAhead = Math.max(maxAhead, pulled - covered);
    }
    expect(emitted).toBe(enc.esize);
    expect(maxAhead).toBeLessThanOrEqual(block.length + 65_536);
  });

  describe('vectors (libs/crypto/vectors/attachments.json)', () => {
    const built = new Map<number, { blob: Uint8Array; digest: Uint8Array }>();
    beforeAll(async () => {
      for (const v of vectors.blobs) {
        const { blob, digest } = await encrypt(pattern(v.size));
        built.set(v.size, { blob, digest });
      }
    });

    it.each(vectors.blobs.map((v) => [v.size, v] as const))('size %d: layout, header, digest and bytes', async (size, v) => {
      const { blob, digest } = built.get(size)!;
      expect(attachmentLayout(size)).toEqual({ paddedSize: v.paddedSize, chunks: v.chunks, esize: v.esize });
      expect(blob.length).toBe(v.esize);
      expect(hexEncode(digest)).toBe(v.digest);
      expect(hexEncode(nodeCrypto.createHash('sha256').update(blob).digest())).toBe(v.digest);
      expect(hexEncode(blob.subarray(0, ATTACHMENT_HEADER_BYTES))).toBe(v.header);
      if (v.blob) expect(hexEncode(blob)).toBe(v.blob);
      if (v.firstSealedChunk) expect(hexEncode(blob.subarray(ATTACHMENT_HEADER_BYTES, ATTACHMENT_HEADER_BYTES + 64))).toBe(v.firstSealedChunk);
      const stored = v.blob ? hexDecode(v.blob) : blob;
      const back = await collect(decryptAttachment([stored], { key: KEY, digest: hexDecode(v.digest), size, esize: v.esize }));
      expect(bytesEqual(back, pattern(size))).toBe(true);
    });

    it.each(vectors.negative.map((n) => [n.name, n] as const))('rejects %s', async (_name, n) => {
      let blob: Uint8Array;
      let secrets: AttachmentSecrets;
      if (n.base === 'nonzero') {
        blob = hexDecode(vectors.nonzeroPadding.blob);
        secrets = { key: KEY, digest: hexDecode(vectors.nonzeroPadding.digest), size: vectors.nonzeroPadding.size, esize: blob.length };
        // The unmodified blob decrypts as the 541-byte file it is.
        expect((await decryptError(blob, secrets)).code).toBeUndefined();
      } else {
        const base = built.get(n.base)!;
        blob = Uint8Array.from(base.blob);
        secrets = { key: KEY, digest: base.digest, size: n.base, esize: blob.length };
      }
      const op = n.op as { truncate?: number; swapChunks?: [number, number]; append?: string; appendChunk?: number; flip?: number; key?: string; digest?: string; esize?: number; size?: number };
      const chunk = (i: number) => blob.slice(ATTACHMENT_HEADER_BYTES + i * ATTACHMENT_SEALED_CHUNK_BYTES, ATTACHMENT_HEADER_BYTES + (i + 1) * ATTACHMENT_SEALED_CHUNK_BYTES);
      if (op.truncate !== undefined) blob = blob.subarray(0, op.truncate);
      if (op.swapChunks) {
        const [a, b] = op.swapChunks;
        const ca = chunk(a);
        const cb = chunk(b);
        blob.set(cb, ATTACHMENT_HEADER_BYTES + a * ATTACHMENT_SEALED_CHUNK_BYTES);
        blob.set(ca, ATTACHMENT_HEADER_BYTES + b * ATTACHMENT_SEALED_CHUNK_BYTES);
      }
      if (op.append !== undefined) blob = Buffer.concat([blob, hexDecode(op.append)]);
      if (op.appendChunk !== undefined) blob = Buffer.concat([blob, chunk(op.appendChunk)]);
      if (op.flip !== undefined) blob[op.flip]! ^= 1;
      if (op.key) secrets = { ...secrets, key: hexDecode(op.key) };
      if (op.digest) secrets = { ...secrets, digest: hexDecode(op.digest) };
      if (op.esize !== undefined) secrets = { ...secrets, esize: op.esize };
      if (op.size !== undefined) secrets = { ...secrets, size: op.size };
      for (const provider of PROVIDERS) expect((await decryptError(blob, secrets, provider)).code).toBe(n.error);
    });
  });
});

import { randomBytes } from './primitives';
import { CryptoError } from './errors';
import {
  ATTACHMENT_CHUNK_BYTES,
  ATTACHMENT_HEADER_BYTES,
  ATTACHMENT_KEY_BYTES,
  ATTACHMENT_SALT_BYTES,
  ATTACHMENT_SEALED_CHUNK_BYTES,
  ATTACHMENT_TAG_BYTES,
  attachmentHeader,
  attachmentLayout,
  attachmentNonce,
  deriveAttachmentKeys,
} from './attachment-format';
import { PIPELINE_MIN_BYTES, defaultAeadProvider, inlineHash, type AeadProvider } from './attachment-provider';

export type ByteSource = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

export interface EncryptAttachmentOptions {
  /** 32 bytes; random when absent (tests and vectors fix it). */
  key?: Uint8Array;
  /** 16 bytes; random when absent. */
  salt?: Uint8Array;
  provider?: AeadProvider;
  /**
   * Yield views of buffers the stream reuses: a piece is valid only until the next one is requested. For
   * consumers that copy each piece at once (upload part buffers, a file write that completes before the
   * next read): no new memory per piece, which measured ~1.5× faster in Node (docs/benchmarks.md, "Files").
   */
  reuseOutput?: boolean;
}

/**
 * Chunks sealed per step of the stream: the hash is fed, pending seals are awaited and the consumer is
 * resumed once per batch instead of per 64 KiB chunk.
 */
const ATTACHMENT_BATCH_CHUNKS = 16;

/**
 * Uninitialized memory where Node has it (every byte is written before it is read), zeroed elsewhere; a plain
 * Uint8Array either way, so a caller's `slice()` copies (Buffer's `slice` would be a view).
 */
function allocOut(n: number): Uint8Array {
  const b = (globalThis as { Buffer?: { allocUnsafe(n: number): Uint8Array } }).Buffer?.allocUnsafe(n);
  return b ? new Uint8Array(b.buffer, b.byteOffset, n) : new Uint8Array(n);
}

/**
 * One attachment being encrypted. `stream(source)` yields the blob in pieces: the header, then each
 * sealed chunk as the cipher produced it (node:crypto: body and tag), each a new buffer the caller may
 * keep; with `reuseOutput`, one piece per 16 chunks (the first with the header) in a reused buffer. The source must
 * yield exactly `size` bytes; a source may reuse its buffer for the next piece (nothing is kept from a
 * piece once the next one is asked for). `digest` is available once the stream has finished.
 */
export class AttachmentEncryptor {
  readonly key: Uint8Array;
  readonly salt: Uint8Array;
  readonly esize: number;
  readonly chunks: number;
  private readonly paddedSize: number;
  private readonly provider: AeadProvider;
  private readonly reuseOutput: boolean;
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
    this.reuseOutput = opts.reuseOutput ?? false;
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
    const { chunks, size } = this;
    const lastLen = this.paddedSize - ATTACHMENT_CHUNK_BYTES * (chunks - 1);
    const chunkLen = (i: number) => (i === chunks - 1 ? lastLen : ATTACHMENT_CHUNK_BYTES);
    // Plaintext of the batch's chunks that do not arrive whole in one source piece (and the final one,
    // which holds padding): slot j of the batch at j·64 KiB. Reused from batch to batch, never yielded.
    const stage = new Uint8Array(Math.min(ATTACHMENT_BATCH_CHUNKS, chunks) * ATTACHMENT_CHUNK_BYTES);

    let index = 0;
    let batchStart = 0;
    let batchEnd = 0;
    // Fresh pieces: what the batch yields, in order. reuseOutput: the batch's bytes in `out`.
    let parts: Uint8Array[] = [];
    let out: Uint8Array = new Uint8Array(0);
    let outOff = 0;
    const reused = this.reuseOutput ? allocOut(ATTACHMENT_HEADER_BYTES + Math.min(ATTACHMENT_BATCH_CHUNKS, chunks) * ATTACHMENT_SEALED_CHUNK_BYTES) : undefined;
    // Seals of a cipher without `sealNow` (WebCrypto) run concurrently within a batch.
    let pending: Promise<void>[] = [];
    const startBatch = () => {
      batchStart = index;
      batchEnd = Math.min(index + ATTACHMENT_BATCH_CHUNKS, chunks);
      parts = batchStart === 0 && !reused ? [header] : [];
      if (reused) {
        const sealedBytes = (batchEnd - batchStart) * ATTACHMENT_SEALED_CHUNK_BYTES - (batchEnd === chunks ? ATTACHMENT_CHUNK_BYTES - lastLen : 0);
        out = reused.subarray(0, (batchStart === 0 ? ATTACHMENT_HEADER_BYTES : 0) + sealedBytes);
        outOff = 0;
        if (batchStart === 0) {
          out.set(header, 0);
          outOff = ATTACHMENT_HEADER_BYTES;
        }
      }
    };
    const place = (sealed: readonly Uint8Array[], at: number, part: number) => {
      if (reused) {
        for (const piece of sealed) {
          out.set(piece, at);
          at += piece.length;
        }
      } else if (sealed.length === 1) parts[part] = sealed[0]!;
      else parts.splice(part, 1, ...sealed);
    };
    /** Seals chunk `index` from `plain`; true when that completed the batch. */
    const seal = (plain: Uint8Array): boolean => {
      const nonce = attachmentNonce(index, index === chunks - 1);
      const at = outOff;
      outOff += plain.length + ATTACHMENT_TAG_BYTES;
      if (cipher.sealNow) place(cipher.sealNow(nonce, header, plain), at, parts.length);
      else {
        // A placeholder keeps the order; the seal fills it (one piece: `seal` joins body and tag).
        const part = parts.push(plain) - 1;
        pending.push(cipher.seal(nonce, header, plain).then((sealed) => place([sealed], at, part)));
      }
      index++;
      return index === batchEnd;
    };
    const settle = async () => {
      if (pending.length === 0) return;
      const all = pending;
      pending = [];
      await Promise.all(all);
    };
    const endBatch = async (): Promise<Uint8Array[]> => {
      await settle();
      const done = reused ? [out] : parts;
      for (const piece of done) {
        const wait = hash.update(piece);
        if (wait) await wait;
      }
      if (index < chunks) startBatch();
      return done;
    };
    const slot = () => stage.subarray((index - batchStart) * ATTACHMENT_CHUNK_BYTES, (index - batchStart) * ATTACHMENT_CHUNK_BYTES + chunkLen(index));

    let complete = false;
    try {
      startBatch();
      let fill = 0;
      let consumed = 0;
      for await (const piece of source) {
        if (consumed + piece.length > size) throw new CryptoError('MALFORMED', `source is longer than the declared ${size} bytes`);
        consumed += piece.length;
        let off = 0;
        while (off < piece.length) {
          // A whole non-final chunk inside the piece is sealed from it directly (no copy into the stage).
          if (fill === 0 && index < chunks - 1 && piece.length - off >= ATTACHMENT_CHUNK_BYTES) {
            const full = seal(piece.subarray(off, off + ATTACHMENT_CHUNK_BYTES));
            off += ATTACHMENT_CHUNK_BYTES;
            if (full) yield* await endBatch();
            continue;
          }
          const s = slot();
          const n = Math.min(s.length - fill, piece.length - off);
          s.set(piece.subarray(off, off + n), fill);
          fill += n;
          off += n;
          // A full chunk is sealed only when it is not the last one: the last also holds padding.
          if (fill === s.length && index < chunks - 1) {
            fill = 0;
            if (seal(s)) yield* await endBatch();
          }
        }
        // The piece may be reused by the source once the next one is asked for.
        await settle();
      }
      if (consumed !== size) throw new CryptoError('MALFORMED', `source ended after ${consumed} of ${size} bytes`);
      // The rest is zero padding, up to the end of the final chunk.
      while (index < chunks) {
        const s = slot();
        s.fill(0, fill);
        fill = 0;
        if (seal(s)) yield* await endBatch();
      }
      this.digestValue = await hash.digest();
      complete = true;
    } finally {
      if (!complete) {
        hash.abort();
        // A failed stream leaves no seal running against buffers the caller may reuse.
        await Promise.allSettled(pending);
      }
    }
  }
}

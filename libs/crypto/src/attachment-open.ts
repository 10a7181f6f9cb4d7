import { bytesEqual } from './bytes';
import { CryptoError } from './errors';
import { ATTACHMENT_CHUNK_BYTES, ATTACHMENT_HEADER_BYTES, ATTACHMENT_MAGIC, ATTACHMENT_SEALED_CHUNK_BYTES, ATTACHMENT_TAG_BYTES, attachmentLayout, attachmentNonce, deriveAttachmentKeys } from './attachment-format';
import { PIPELINE_MIN_BYTES, defaultAeadProvider, inlineHash, type AeadProvider } from './attachment-provider';
import type { ByteSource } from './attachment-seal';

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

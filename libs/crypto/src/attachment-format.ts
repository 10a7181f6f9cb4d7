import { ascii, hkdf } from './primitives';
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

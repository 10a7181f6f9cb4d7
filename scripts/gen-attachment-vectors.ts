/**
 * Writes libs/crypto/vectors/attachments.json: PROTOCOL.md §14 item 7 (attachments). Deterministic:
 * fixed K and salt, plaintext byte j = j mod 251. Small blobs are stored whole; larger ones by
 * header, first sealed chunk and SHA-256 digest. Run: `npm run build && node dist/scripts/gen-attachment-vectors.js`.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { AttachmentEncryptor, attachmentLayout, hexEncode, paddedSize, ATTACHMENT_HEADER_BYTES, ATTACHMENT_SEALED_CHUNK_BYTES } from '@umbra/crypto';

const KEY = Uint8Array.from({ length: 32 }, (_, i) => i);
const SALT = Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i);
const SIZES = [0, 1, 541, 542, 65_536, 65_537, 3 * 65_536 + 1];
const WHOLE_BLOB_MAX = 1024;

function plaintext(n: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, j) => j % 251);
}

async function encrypt(pt: Uint8Array, size = pt.length): Promise<{ blob: Uint8Array; digest: Uint8Array }> {
  const enc = new AttachmentEncryptor(size, { key: KEY, salt: SALT });
  const parts: Uint8Array[] = [];
  for await (const p of enc.stream([pt])) parts.push(p);
  return { blob: Buffer.concat(parts), digest: enc.digest };
}

async function main(): Promise<void> {
  const blobs = [];
  for (const size of SIZES) {
    const { blob, digest } = await encrypt(plaintext(size));
    const layout = attachmentLayout(size);
    blobs.push({
      size,
      paddedSize: layout.paddedSize,
      chunks: layout.chunks,
      esize: layout.esize,
      digest: hexEncode(digest),
      header: hexEncode(blob.subarray(0, ATTACHMENT_HEADER_BYTES)),
      firstSealedChunk: blob.length <= WHOLE_BLOB_MAX ? undefined : hexEncode(blob.subarray(ATTACHMENT_HEADER_BYTES, ATTACHMENT_HEADER_BYTES + 64)),
      blob: blob.length <= WHOLE_BLOB_MAX ? hexEncode(blob) : undefined,
    });
  }
  // Authenticated but non-zero padding: 541 plaintext bytes ending in a non-zero byte, presented as 540.
  const nz = await encrypt(Uint8Array.from({ length: 541 }, () => 0x41), 541);
  const big = 3 * 65_536 + 1;
  const bigLayout = attachmentLayout(big);
  const negative = [
    { name: 'truncated-last-byte', base: big, op: { truncate: bigLayout.esize - 1 }, error: 'TRUNCATED' },
    { name: 'truncated-last-chunk', base: big, op: { truncate: ATTACHMENT_HEADER_BYTES + (bigLayout.chunks - 1) * ATTACHMENT_SEALED_CHUNK_BYTES }, error: 'TRUNCATED' },
    { name: 'truncated-header', base: 0, op: { truncate: 40 }, error: 'TRUNCATED' },
    { name: 'reordered-chunks-0-1', base: big, op: { swapChunks: [0, 1] }, error: 'DECRYPT_FAILED' },
    { name: 'extended-one-byte', base: big, op: { append: '00' }, error: 'MALFORMED' },
    { name: 'extended-duplicate-chunk', base: 65_537, op: { appendChunk: 0 }, error: 'MALFORMED' },
    { name: 'wrong-commit', base: 1, op: { flip: 40 }, error: 'BAD_COMMITMENT' },
    { name: 'wrong-key', base: 1, op: { key: hexEncode(Uint8Array.from({ length: 32 }, (_, i) => 255 - i)) }, error: 'BAD_COMMITMENT' },
    { name: 'bad-magic', base: 1, op: { flip: 0 }, error: 'MALFORMED' },
    { name: 'bad-version', base: 1, op: { flip: 4 }, error: 'UNSUPPORTED_VERSION' },
    { name: 'salt-swapped', base: 1, op: { flip: 8 }, error: 'BAD_COMMITMENT' },
    { name: 'ciphertext-bit-flip', base: 542, op: { flip: 100 }, error: 'DECRYPT_FAILED' },
    { name: 'tag-bit-flip', base: 542, op: { flip: 639 }, error: 'DECRYPT_FAILED' },
    { name: 'wrong-digest', base: 542, op: { digest: '00'.repeat(32) }, error: 'BAD_DIGEST' },
    { name: 'wrong-esize', base: 542, op: { esize: attachmentLayout(542).esize + 16 }, error: 'MALFORMED' },
    { name: 'nonzero-padding', base: 'nonzero', op: { size: 540 }, error: 'MALFORMED' },
  ];
  const out = {
    description: 'PROTOCOL.md §9 attachments (§14 item 7). Plaintext byte j = j mod 251. Blobs over 1024 bytes are given by header, the first 64 bytes after it and their SHA-256 digest. Negative cases name a base blob (by size) and one change to it or to the pointer; `error` is the CryptoError code.',
    key: hexEncode(KEY),
    salt: hexEncode(SALT),
    paddedSize: [0, 1, 541, 542, 568, 569, 1000, 65_536, 1_000_000, 2 ** 32].map((n) => [n, paddedSize(n)]),
    blobs,
    nonzeroPadding: { plaintext: '41 repeated 541 times', size: 541, blob: hexEncode(nz.blob), digest: hexEncode(nz.digest) },
    negative,
  };
  const target = path.resolve(__dirname, '..', '..', 'libs', 'crypto', 'vectors', 'attachments.json');
  writeFileSync(target, `${JSON.stringify(out, null, 2)}\n`);
  process.stdout.write(`wrote ${target}\n`);
}

void main();

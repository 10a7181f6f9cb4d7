import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ATTACHMENT_HEADER_BYTES, b64uEncode } from '@umbra/crypto';
import {
  AttachmentVerificationError,
  MemoryStore,
  browserProvider,
  downloadAttachment,
  pendingUploads,
  uploadAttachment,
  type AttachmentSource,
  type FileProgress,
} from '@umbra/sdk';
import { downloadFile, uploadFile } from '@umbra/sdk/node';
import { TestStack } from './support/harness';
import { registeredClient, type TestClient } from './support/clients';

const MiB = 1024 * 1024;

/**
 * The SDK's browser path (fetch + WebCrypto, `@umbra/sdk` main entry) against the real stack and
 * the embedded S3: its blobs are the Node path's (`@umbra/sdk/node`) byte for byte, each decrypts
 * the other's, uploads resume from the SDK store, and a changed blob is refused.
 */
describe('attachments: the browser path and the Node path write the same §9 blobs', () => {
  let stack: TestStack;
  let dir: string;
  let s3dir: string;
  let alice: TestClient;
  let bob: TestClient;

  beforeAll(async () => {
    stack = await TestStack.start({
      withS3: true,
      env: {
        ATTACHMENT_MULTIPART_THRESHOLD_BYTES: String(5 * MiB),
        ATTACHMENT_PART_BYTES: String(5 * MiB),
        ATTACHMENT_MAX_BYTES: String(100 * MiB),
        ATTACHMENT_QUOTA_BYTES_PER_DAY: String(300 * MiB),
      },
    });
    s3dir = `/tmp/umbra-test-s3-${stack.env.REDIS_PREFIX}`;
    dir = await mkdtemp(path.join(tmpdir(), 'umbra-att-browser-'));
    alice = await registeredClient(stack.origin);
    bob = await registeredClient(stack.origin);
  });

  afterAll(async () => {
    await alice?.client.close();
    await bob?.client.close();
    await stack?.stop();
    await rm(dir, { recursive: true, force: true });
    await rm(s3dir, { recursive: true, force: true });
  });

  const objectPath = (oid: string) => path.join(s3dir, 'umbra-test', 'att', `${oid}._S3rver_object`);
  const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest();

  it('runs on WebCrypto: the same provider a browser gets', () => {
    expect(browserProvider()?.name).toBe('webcrypto');
  });

  it('a browser-path upload (a Blob, three parts) is decrypted by the Node SDK to the same bytes', async () => {
    const bytes = randomBytes(11 * MiB + 4321);
    const progress: FileProgress[] = [];
    const pointer = await uploadAttachment(alice.client, new Blob([bytes], { type: 'application/x-test' }), { name: 'b.bin', onProgress: (p) => progress.push(p) });
    expect(pointer).toMatchObject({ size: bytes.length, ct: 'application/x-test', name: 'b.bin' });
    // The stored object is the §9 blob: its SHA-256 is the pointer's digest.
    const stored = await readFile(objectPath(pointer.oid));
    expect(stored.length).toBe(pointer.esize);
    expect(b64uEncode(sha256(stored))).toBe(pointer.dig);
    expect(progress.length).toBe(3);
    expect(progress.map((p) => p.total)).toEqual([pointer.esize, pointer.esize, pointer.esize]);
    expect(progress.at(-1)?.done).toBe(pointer.esize);

    const out = path.join(dir, 'b.out');
    await downloadFile(bob.client, pointer, out);
    expect((await readFile(out)).equals(bytes)).toBe(true);
  });

  it('a Node-path upload is decrypted by the browser path to the same bytes, with download progress', async () => {
    const bytes = randomBytes(6 * MiB + 17);
    const file = path.join(dir, 'n.bin');
    await writeFile(file, bytes);
    const pointer = await uploadFile(alice.client, file, { contentType: 'image/png' });
    const seen: number[] = [];
    const blob = await downloadAttachment(bob.client, pointer, { onProgress: (p) => seen.push(p.done) });
    expect(blob.type).toBe('image/png');
    expect(Buffer.from(await blob.arrayBuffer()).equals(bytes)).toBe(true);
    expect(seen.at(-1)).toBe(pointer.esize);
    expect(seen.length).toBeGreaterThan(1);
  });

  it.each([0, 1, 65_536, 65_537])('small sizes cross both ways (%d bytes)', async (size) => {
    const bytes = randomBytes(size);
    const viaBrowser = await uploadAttachment(alice.client, new Blob([bytes]));
    const out = path.join(dir, `s${size}.out`);
    await downloadFile(bob.client, viaBrowser, out);
    expect((await readFile(out)).equals(bytes)).toBe(true);
    const file = path.join(dir, `s${size}.bin`);
    await writeFile(file, bytes);
    const viaNode = await uploadFile(alice.client, file);
    expect(Buffer.from(await (await downloadAttachment(bob.client, viaNode)).arrayBuffer()).equals(bytes)).toBe(true);
  });

  it('an interrupted upload resumes from the state in the SDK store, sending only the missing parts', async () => {
    const bytes = randomBytes(16 * MiB);
    const blob = new Blob([bytes]);
    const store = new MemoryStore();
    const abort = new AbortController();
    await expect(
      uploadAttachment(alice.client, blob, {
        resume: { store, key: 'conv-1/16m', tag: 'conv-1' },
        concurrency: 1,
        signal: abort.signal,
        onProgress: () => abort.abort(new Error('simulated reload')),
      }),
    ).rejects.toThrow('simulated reload');
    const pending = await pendingUploads(store);
    expect(pending).toEqual([expect.objectContaining({ key: 'conv-1/16m', size: bytes.length, tag: 'conv-1' })]);
    const state = JSON.parse((await store.get('attachment-upload/conv-1/16m'))!) as { id: string };
    const before = await alice.client.api<{ uploaded: { partNumber: number }[]; missing: { partNumber: number }[]; partCount: number }>('GET', `/v1/attachments/${state.id}/parts`);
    expect(before.partCount).toBe(4);
    expect(before.uploaded.length).toBeGreaterThanOrEqual(1);
    expect(before.uploaded.length).toBeLessThan(4);

    // The PUTs the resumed upload makes, observed on their way to the store.
    const puts: number[] = [];
    const realFetch = globalThis.fetch;
    globalThis.fetch = (input, init) => {
      if (init?.method === 'PUT') puts.push(Number(new URL(String(input)).searchParams.get('partNumber')));
      return realFetch(input, init);
    };
    const progress: number[] = [];
    const pointer = await uploadAttachment(alice.client, blob, { resume: { store, key: 'conv-1/16m' }, onProgress: (p) => progress.push(p.done) }).finally(() => {
      globalThis.fetch = realFetch;
    });
    expect(puts.sort()).toEqual(before.missing.map((p) => p.partNumber).sort());
    expect(pointer.oid).toBe(state.id);
    expect(progress.at(-1)).toBe(pointer.esize);
    expect(await pendingUploads(store)).toEqual([]);
    expect(Buffer.from(await (await downloadAttachment(bob.client, pointer)).arrayBuffer()).equals(bytes)).toBe(true);
  });

  it('refuses to resume with different content under the same version', async () => {
    const store = new MemoryStore();
    const source = (fill: number): AttachmentSource => ({
      size: 8 * MiB,
      version: 'same',
      async *open() {
        for (let i = 0; i < 8; i++) yield new Uint8Array(MiB).fill(fill);
      },
    });
    const abort = new AbortController();
    await expect(uploadAttachment(alice.client, source(1), { resume: { store, key: 'k' }, concurrency: 1, signal: abort.signal, onProgress: () => abort.abort(new Error('stop')) })).rejects.toThrow('stop');
    await expect(uploadAttachment(alice.client, source(2), { resume: { store, key: 'k' } })).rejects.toThrow(/differs from this file/);
  });

  describe('a changed blob fails verification with a clear error and yields no Blob', () => {
    it.each([
      ['a flipped byte in a chunk', 'DECRYPT_FAILED'],
      ['a wrong digest in the pointer', 'BAD_DIGEST'],
    ])('%s', async (_label, code) => {
      const bytes = randomBytes(3 * 65_536 + 5);
      const pointer = await uploadAttachment(alice.client, new Blob([bytes]));
      if (code === 'DECRYPT_FAILED') {
        const stored = await readFile(objectPath(pointer.oid));
        stored[ATTACHMENT_HEADER_BYTES + 70_000]! ^= 1;
        await writeFile(objectPath(pointer.oid), stored);
      }
      const target = code === 'BAD_DIGEST' ? { ...pointer, dig: b64uEncode(randomBytes(32)) } : pointer;
      const err = await downloadAttachment(bob.client, target).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(AttachmentVerificationError);
      expect(err).toMatchObject({ code });
      expect((err as Error).message).toMatch(/failed verification/);
    });
  });
});

import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ATTACHMENT_HEADER_BYTES, ATTACHMENT_SEALED_CHUNK_BYTES, CryptoError } from '@umbra/crypto';
import { LIMITS, type CreateAttachmentResponse } from '@umbra/protocol';
import { UmbraApiError } from '@umbra/sdk';
import { attachmentContent, downloadFile, pointerOf, uploadFile, type AttachmentPointer } from '@umbra/sdk/node';
import { AttachmentsRepository, ManualClock } from '@umbra/server';
import { AttachmentCleanupService } from '../services/media-upload/src/attachments/attachment-cleanup.service';
import { TestStack, waitFor } from './support/harness';
import { registeredClient, type TestClient } from './support/clients';
import { newAccount } from './support/devices';

const MiB = 1024 * 1024;
const MARKER = 'UMBRA-PLAINTEXT-MARKER-7f3a9c';

/** Attachments end to end against the embedded S3 (it checks request signatures and URL expiry). */
describe('files: encrypted attachments in the object store', () => {
  const clock = new ManualClock(Date.now());
  let stack: TestStack;
  let dir: string;
  let s3dir: string;
  let alice: TestClient;
  let bob: TestClient;

  beforeAll(async () => {
    stack = await TestStack.start({
      withS3: true,
      overrides: { clock },
      env: {
        ATTACHMENT_MULTIPART_THRESHOLD_BYTES: String(5 * MiB),
        ATTACHMENT_PART_BYTES: String(5 * MiB),
        ATTACHMENT_MAX_BYTES: String(100 * MiB),
        ATTACHMENT_QUOTA_BYTES_PER_DAY: String(200 * MiB),
        ATTACHMENT_MAX_PENDING_UPLOADS: '3',
        ATTACHMENT_UPLOAD_TIMEOUT_S: '600',
        ATTACHMENT_DOWNLOAD_URL_TTL_S: '4',
        ATTACHMENT_REAP_INTERVAL_MS: '3600000',
      },
    });
    s3dir = `/tmp/umbra-test-s3-${stack.env.REDIS_PREFIX}`;
    dir = await mkdtemp(path.join(tmpdir(), 'umbra-files-'));
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

  async function file(name: string, size: number): Promise<{ path: string; bytes: Buffer }> {
    const bytes = randomBytes(size);
    // A recognisable marker every 64 KiB, to search the store for plaintext.
    for (let o = 0; o + MARKER.length <= size; o += 65_536) bytes.write(MARKER, o, 'latin1');
    const p = path.join(dir, name);
    await writeFile(p, bytes);
    return { path: p, bytes };
  }

  const objectPath = (oid: string) => path.join(s3dir, 'umbra-test', 'att', `${oid}._S3rver_object`);
  const uploadsDir = () => path.join(s3dir, 'umbra-test', '._S3rver_uploads');
  async function apiError(p: Promise<unknown>): Promise<{ status: number; code: string }> {
    try {
      await p;
    } catch (err) {
      if (err instanceof UmbraApiError) return { status: err.status, code: err.code };
      throw err;
    }
    throw new Error('expected an API error');
  }
  async function raw(method: string, p: string, opts: { body?: string; token?: string | null } = {}) {
    const headers: Record<string, string> = {};
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    if (opts.token !== null) headers.authorization = `Bearer ${opts.token ?? (await alice.client.getToken())}`;
    const res = await fetch(`${stack.origin}${p}`, { method, headers, ...(opts.body !== undefined ? { body: opts.body } : {}) });
    const json = (await res.json().catch(() => ({}))) as { error?: { code?: string } };
    return { status: res.status, code: json.error?.code ?? '' };
  }

  /** The URL of part `n` (or of the whole blob, for a single PUT). */
  const urlOf = (up: CreateAttachmentResponse, n = 1): string => (up.upload.kind === 'single' ? up.upload.url : up.upload.parts.find((p) => p.partNumber === n)!.url);
  const put = async (url: string, body: Buffer) => (await fetch(url, { method: 'PUT', body: new Uint8Array(body) })).status;
  /** The store's directory of this attachment's unfinished multipart upload. */
  async function uploadDirOf(id: string): Promise<string> {
    for (const u of await readdir(uploadsDir())) if ((await readFile(path.join(uploadsDir(), u, 'key'), 'utf8')) === `att/${id}`) return path.join(uploadsDir(), u);
    throw new Error('no multipart upload in the store');
  }

  it.each([
    ['empty', 0],
    ['one byte', 1],
    ['chunk − 1', 65_535],
    ['one chunk', 65_536],
    ['chunk + 1', 65_537],
  ])('uploads and downloads a %s file (%d bytes) with identical bytes', async (_label, size) => {
    const f = await file(`s${size}.bin`, size);
    const pointer = await uploadFile(alice.client, f.path, { contentType: 'application/octet-stream' });
    expect(pointer.size).toBe(size);
    expect((await stat(objectPath(pointer.oid))).size).toBe(pointer.esize);
    const out = path.join(dir, `s${size}.out`);
    await downloadFile(bob.client, pointer, out);
    expect((await readFile(out)).equals(f.bytes)).toBe(true);
  });

  it('uploads a multi-part file in parallel parts; the store never holds the plaintext', async () => {
    const f = await file('multi.bin', 12 * MiB + 12_345);
    const progress: number[] = [];
    const pointer = await uploadFile(alice.client, f.path, { onProgress: (p) => progress.push(p.done) });
    expect(progress.at(-1)).toBe(pointer.esize);
    expect(Math.ceil(pointer.esize / (5 * MiB))).toBe(3);
    const out = path.join(dir, 'multi.out');
    await downloadFile(bob.client, pointer, out);
    expect((await readFile(out)).equals(f.bytes)).toBe(true);
    // The marker is in the plaintext many times, and nowhere in the store.
    expect(f.bytes.includes(MARKER)).toBe(true);
    const stored: string[] = [];
    const walk = async (d: string): Promise<void> => {
      for (const e of await readdir(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) await walk(p);
        else stored.push(p);
      }
    };
    await walk(s3dir);
    expect(stored.length).toBeGreaterThan(0);
    for (const p of stored) expect((await readFile(p)).includes(MARKER)).toBe(false);
  });

  it('resumes an interrupted multipart upload, sending only the missing parts', async () => {
    const f = await file('resume.bin', 16 * MiB);
    const statePath = path.join(dir, 'resume.state');
    const abort = new AbortController();
    const sentFirst: number[] = [];
    await expect(
      uploadFile(alice.client, f.path, {
        statePath,
        concurrency: 1,
        signal: abort.signal,
        onProgress: (p) => {
          sentFirst.push(p.done);
          abort.abort(new Error('simulated crash'));
        },
      }),
    ).rejects.toThrow('simulated crash');
    const state = JSON.parse(await readFile(statePath, 'utf8')) as { id: string };
    const parts = await alice.client.api<{ uploaded: { partNumber: number }[]; missing: { partNumber: number }[]; partCount: number }>('GET', `/v1/attachments/${state.id}/parts`);
    expect(parts.partCount).toBe(4);
    expect(parts.uploaded.length).toBeGreaterThanOrEqual(1);
    expect(parts.missing.length).toBeGreaterThanOrEqual(1);
    // Not downloadable, and not completable, until every part is there.
    expect(await apiError(bob.client.api('GET', `/v1/attachments/${state.id}`))).toEqual({ status: 409, code: 'ATTACHMENT_NOT_READY' });
    expect(await apiError(alice.client.api('POST', `/v1/attachments/${state.id}/complete`))).toEqual({ status: 409, code: 'UPLOAD_INCOMPLETE' });

    const pointer = await uploadFile(alice.client, f.path, { statePath });
    expect(pointer.oid).toBe(state.id);
    expect(existsSync(statePath)).toBe(false);
    const out = path.join(dir, 'resume.out');
    await downloadFile(bob.client, pointer, out);
    expect((await readFile(out)).equals(f.bytes)).toBe(true);
  });

  describe('a stored blob that was changed is rejected and leaves no output', () => {
    let pointer: AttachmentPointer;
    let original: Buffer;
    beforeAll(async () => {
      const f = await file('tamper.bin', 3 * 65_536 + 7);
      pointer = await uploadFile(alice.client, f.path);
      original = await readFile(objectPath(pointer.oid));
    });
    afterEach(async () => writeFile(objectPath(pointer.oid), original));

    it.each([
      ['tampered', (b: Buffer) => { b[ATTACHMENT_HEADER_BYTES + 70_000]! ^= 1; return b; }, 'DECRYPT_FAILED'],
      ['reordered', (b: Buffer) => {
        const c0 = Buffer.from(b.subarray(ATTACHMENT_HEADER_BYTES, ATTACHMENT_HEADER_BYTES + ATTACHMENT_SEALED_CHUNK_BYTES));
        b.copy(b, ATTACHMENT_HEADER_BYTES, ATTACHMENT_HEADER_BYTES + ATTACHMENT_SEALED_CHUNK_BYTES, ATTACHMENT_HEADER_BYTES + 2 * ATTACHMENT_SEALED_CHUNK_BYTES);
        c0.copy(b, ATTACHMENT_HEADER_BYTES + ATTACHMENT_SEALED_CHUNK_BYTES);
        return b;
      }, 'DECRYPT_FAILED'],
      ['truncated', (b: Buffer) => b.subarray(0, b.length - 100), 'TRUNCATED'],
      ['header swapped', (b: Buffer) => { b[30]! ^= 1; return b; }, 'BAD_COMMITMENT'],
    ])('%s', async (_name, change, code) => {
      await writeFile(objectPath(pointer.oid), change(Buffer.from(original)));
      const out = path.join(dir, `tamper-${code}.out`);
      const err = await downloadFile(bob.client, pointer, out).then(() => undefined, (e: unknown) => e);
      // A truncated object may also fail in transport (the store's recorded length no longer matches).
      if (code === 'TRUNCATED') expect(err).toBeInstanceOf(Error);
      else expect(err).toMatchObject({ code });
      if (err instanceof CryptoError) expect(err.code).toBe(code);
      expect(existsSync(out)).toBe(false);
      expect(existsSync(`${out}.part`)).toBe(false);
    });

    it('a wrong digest in the pointer', async () => {
      const out = path.join(dir, 'digest.out');
      await expect(downloadFile(bob.client, { ...pointer, dig: Buffer.alloc(32).toString('base64url') }, out)).rejects.toMatchObject({ code: 'BAD_DIGEST' });
      expect(existsSync(out)).toBe(false);
    });
  });

  it('refuses a completed upload whose stored size differs from the declared size, and deletes it', async () => {
    // The store refuses other lengths (signed Content-Length); complete still checks, for a store that would not.
    const small = await alice.client.api<CreateAttachmentResponse>('POST', '/v1/attachments', { size: 1000 });
    expect(await put(urlOf(small), randomBytes(1000))).toBe(200);
    await writeFile(path.join(await uploadDirOf(small.id), '1'), randomBytes(1001));
    expect(await apiError(alice.client.api('POST', `/v1/attachments/${small.id}/complete`))).toEqual({ status: 409, code: 'UPLOAD_SIZE_MISMATCH' });
    expect(existsSync(objectPath(small.id))).toBe(false);
    expect(await apiError(alice.client.api('GET', `/v1/attachments/${small.id}`))).toEqual({ status: 404, code: 'ATTACHMENT_NOT_FOUND' });

    const multi = await alice.client.api<CreateAttachmentResponse>('POST', '/v1/attachments', { size: 6 * MiB });
    if (multi.upload.kind !== 'multipart') throw new Error('expected a multipart upload');
    expect(multi.upload.parts).toHaveLength(2);
    for (const p of multi.upload.parts) expect(await put(p.url, randomBytes(p.partNumber === 1 ? 5 * MiB : 1 * MiB))).toBe(200);
    await writeFile(path.join(await uploadDirOf(multi.id), '2'), randomBytes(1 * MiB - 1));
    expect(await apiError(alice.client.api('POST', `/v1/attachments/${multi.id}/complete`))).toEqual({ status: 409, code: 'UPLOAD_SIZE_MISMATCH' });
    expect(existsSync(objectPath(multi.id))).toBe(false);
    expect(existsSync(path.join(uploadsDir(), 'x')) || (await readdir(uploadsDir()).catch(() => [])).length).toBeFalsy();
  });

  describe('upload URLs bind the declared size and die at complete (quota bypass)', () => {

    it('the store refuses a PUT of more or fewer bytes than each URL was issued for', async () => {
      const small = await alice.client.api<CreateAttachmentResponse>('POST', '/v1/attachments', { size: 1000 });
      expect(new URL(urlOf(small)).searchParams.get('X-Amz-SignedHeaders')?.split(';')).toContain('content-length');
      expect(await put(urlOf(small), randomBytes(1001))).toBe(403);
      expect(await put(urlOf(small), randomBytes(999))).toBe(403);
      // Without a Content-Length (chunked) the signed header cannot match either.
      const chunked = new ReadableStream<Uint8Array>({ start: (c) => (c.enqueue(new Uint8Array(randomBytes(1000))), c.close()) });
      const chunkedStatus = (await fetch(urlOf(small), { method: 'PUT', body: chunked, duplex: 'half' } as RequestInit)).status;
      expect(chunkedStatus).toBeGreaterThanOrEqual(400);
      expect(await put(urlOf(small), randomBytes(1000))).toBe(200);
      expect(await alice.client.api('POST', `/v1/attachments/${small.id}/complete`)).toMatchObject({ size: 1000 });

      const multi = await alice.client.api<CreateAttachmentResponse>('POST', '/v1/attachments', { size: 6 * MiB });
      if (multi.upload.kind !== 'multipart') throw new Error('expected a multipart upload');
      expect(await put(urlOf(multi, 1), randomBytes(5 * MiB + 1))).toBe(403);
      expect(await put(urlOf(multi, 2), randomBytes(1 * MiB + 1))).toBe(403);
      expect(await put(urlOf(multi, 2), randomBytes(1 * MiB - 1))).toBe(403);
      expect(await alice.client.api<{ missing: unknown[] }>('GET', `/v1/attachments/${multi.id}/parts`)).toMatchObject({ uploaded: [] });
      expect(await put(urlOf(multi, 1), randomBytes(5 * MiB))).toBe(200);
      expect(await put(urlOf(multi, 2), randomBytes(1 * MiB))).toBe(200);
      expect(await alice.client.api('POST', `/v1/attachments/${multi.id}/complete`)).toMatchObject({ size: 6 * MiB });
      for (const id of [small.id, multi.id]) await alice.client.api('DELETE', `/v1/attachments/${id}`);
    });

    it('upload URLs are short-lived and never outlive the upload deadline', async () => {
      const up = await alice.client.api<CreateAttachmentResponse>('POST', '/v1/attachments', { size: 1000 });
      const ttl = Number(new URL(urlOf(up)).searchParams.get('X-Amz-Expires'));
      expect(ttl).toBeLessThanOrEqual(LIMITS.MAX_ATTACHMENT_UPLOAD_URL_TTL_S);
      expect(up.upload.urlExpiresAt).toBeLessThanOrEqual(up.uploadDeadline);
      await alice.client.api('DELETE', `/v1/attachments/${up.id}`);
    });

    it.each([
      ['below the multipart threshold', 1000],
      ['in parts', 6 * MiB],
    ])('after complete, the upload URLs cannot change the stored object (%s)', async (_label, size) => {
      const up = await alice.client.api<CreateAttachmentResponse>('POST', '/v1/attachments', { size });
      const partSize = up.upload.kind === 'multipart' ? up.upload.partSize : size;
      const parts = up.upload.kind === 'multipart' ? up.upload.parts.map((p) => p.partNumber) : [1];
      const bytesOf = (n: number) => (n < parts.length ? partSize : size - partSize * (parts.length - 1));
      for (const n of parts) expect(await put(urlOf(up, n), randomBytes(bytesOf(n)))).toBe(200);
      await alice.client.api('POST', `/v1/attachments/${up.id}/complete`);
      const stored = await readFile(objectPath(up.id));
      expect(stored.length).toBe(size);
      for (const n of parts) expect(await put(urlOf(up, n), randomBytes(bytesOf(n)))).not.toBe(200);
      expect((await readFile(objectPath(up.id))).equals(stored)).toBe(true);
      // Nothing left behind in the store's multipart area either.
      expect(existsSync(path.join(uploadsDir(), 'x')) || (await readdir(uploadsDir()).catch(() => [])).length).toBeFalsy();
      expect(await alice.client.api('POST', `/v1/attachments/${up.id}/complete`)).toMatchObject({ size });
      await alice.client.api('DELETE', `/v1/attachments/${up.id}`);
    });

    it('the quota counts the bytes the store holds, not the declared size', async () => {
      const dave = await registeredClient(stack.origin);
      try {
        const repo = stack.of('media-upload')[0]!.svc.app.get(AttachmentsRepository);
        const up = await dave.client.api<CreateAttachmentResponse>('POST', '/v1/attachments', { size: 1000 });
        expect(await repo.bytesUsedToday(dave.client.identity.accountId, clock.now())).toBe(1000);
        const extra = randomBytes(64 * 1024);
        // A store that ignored the signed length (the embedded one enforces it): the bytes are written behind its back.
        if ((await put(urlOf(up), extra)) === 403) {
          expect(await put(urlOf(up), randomBytes(1000))).toBe(200);
          await writeFile(path.join(await uploadDirOf(up.id), '1'), extra);
        }
        expect(await apiError(dave.client.api('POST', `/v1/attachments/${up.id}/complete`))).toEqual({ status: 409, code: 'UPLOAD_SIZE_MISMATCH' });
        expect(await repo.bytesUsedToday(dave.client.identity.accountId, clock.now())).toBe(extra.length);
        expect(existsSync(objectPath(up.id))).toBe(false);
      } finally {
        await dave.client.close();
      }
    });
  });

  it('refuses tampered and expired pre-signed URLs (the store checks signature and expiry)', async () => {
    const f = await file('url.bin', 5000);
    const pointer = await uploadFile(alice.client, f.path);
    const link = await bob.client.api<{ url: string }>('GET', `/v1/attachments/${pointer.oid}`);
    const u = new URL(link.url);
    expect(u.searchParams.get('X-Amz-Expires')).toBe('4');
    const sig = u.searchParams.get('X-Amz-Signature')!;
    u.searchParams.set('X-Amz-Signature', `${sig.slice(0, -1)}${sig.endsWith('0') ? '1' : '0'}`);
    expect((await fetch(u)).status).toBe(403);
    const other = new URL(link.url);
    other.pathname = other.pathname.replace(pointer.oid, `${pointer.oid.slice(0, -1)}${pointer.oid.endsWith('A') ? 'B' : 'A'}`);
    expect((await fetch(other)).status).toBe(403);
    const ok = await fetch(link.url);
    expect(ok.status).toBe(200);
    await ok.arrayBuffer();
    await new Promise((r) => setTimeout(r, 5100));
    expect((await fetch(link.url)).status).toBe(403);

    const up = await alice.client.api<CreateAttachmentResponse>('POST', '/v1/attachments', { size: 700 });
    const bad = new URL(urlOf(up));
    bad.searchParams.set('X-Amz-Signature', '0'.repeat(64));
    expect(await put(bad.toString(), randomBytes(700))).toBe(403);
    await alice.client.api('DELETE', `/v1/attachments/${up.id}`);
  });

  it('only the uploader may complete, resume or abort; anyone who knows the id may download', async () => {
    const up = await alice.client.api<CreateAttachmentResponse>('POST', '/v1/attachments', { size: 613 });
    expect(await put(urlOf(up), randomBytes(613))).toBe(200);
    expect(await apiError(bob.client.api('POST', `/v1/attachments/${up.id}/complete`))).toEqual({ status: 403, code: 'NOT_UPLOADER' });
    expect(await apiError(bob.client.api('DELETE', `/v1/attachments/${up.id}`))).toEqual({ status: 403, code: 'NOT_UPLOADER' });
    expect(await apiError(bob.client.api('GET', `/v1/attachments/${up.id}/parts`))).toEqual({ status: 403, code: 'NOT_UPLOADER' });
    expect(await alice.client.api('POST', `/v1/attachments/${up.id}/complete`)).toMatchObject({ id: up.id, size: 613 });
    expect(await alice.client.api('POST', `/v1/attachments/${up.id}/complete`)).toMatchObject({ id: up.id, size: 613 });
    expect(await bob.client.api('GET', `/v1/attachments/${up.id}`)).toMatchObject({ id: up.id, size: 613 });
    await alice.client.api('DELETE', `/v1/attachments/${up.id}`);
    expect(existsSync(objectPath(up.id))).toBe(false);
    expect(await apiError(bob.client.api('GET', `/v1/attachments/${up.id}`))).toEqual({ status: 404, code: 'ATTACHMENT_NOT_FOUND' });
  });

  it('enforces the per-account quotas: unfinished uploads, bytes per day, maximum size', async () => {
    const carol = await registeredClient(stack.origin);
    try {
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) ids.push((await carol.client.api<CreateAttachmentResponse>('POST', '/v1/attachments', { size: 1000 })).id);
      expect(await apiError(carol.client.api('POST', '/v1/attachments', { size: 1000 }))).toEqual({ status: 429, code: 'TOO_MANY_PENDING_UPLOADS' });
      await carol.client.api('DELETE', `/v1/attachments/${ids.pop()!}`);
      expect(await apiError(carol.client.api('POST', '/v1/attachments', { size: 100 * MiB + 1 }))).toEqual({ status: 413, code: 'ATTACHMENT_TOO_LARGE' });
      ids.push((await carol.client.api<CreateAttachmentResponse>('POST', '/v1/attachments', { size: 100 * MiB })).id);
      for (const id of ids) await carol.client.api('DELETE', `/v1/attachments/${id}`);
      ids.length = 0;
      ids.push((await carol.client.api<CreateAttachmentResponse>('POST', '/v1/attachments', { size: 100 * MiB - 3000 })).id);
      // 200 MiB a day: deleting does not give bytes back.
      expect(await apiError(carol.client.api('POST', '/v1/attachments', { size: 1000 }))).toEqual({ status: 429, code: 'ATTACHMENT_QUOTA_EXCEEDED' });
      await carol.client.api('DELETE', `/v1/attachments/${ids[0]!}`);
    } finally {
      await carol.client.close();
    }
  });

  it('aborts abandoned uploads and deletes expired attachments when the clock moves', async () => {
    const cleanup = stack.of('media-upload')[0]!.svc.app.get(AttachmentCleanupService);
    const abandoned = await alice.client.api<CreateAttachmentResponse>('POST', '/v1/attachments', { size: 6 * MiB });
    if (abandoned.upload.kind !== 'multipart') throw new Error('expected a multipart upload');
    expect((await fetch(abandoned.upload.parts[0]!.url, { method: 'PUT', body: randomBytes(5 * MiB) })).status).toBe(200);
    expect((await readdir(uploadsDir())).length).toBeGreaterThanOrEqual(1);
    const f = await file('expiring.bin', 2000);
    const expiring = await uploadFile(alice.client, f.path, { expiresAt: clock.now() + 60_000 });
    expect(existsSync(objectPath(expiring.oid))).toBe(true);

    expect(await cleanup.runOnce()).toBe(0);
    clock.advance(61_000);
    expect(await apiError(bob.client.api('GET', `/v1/attachments/${expiring.oid}`))).toEqual({ status: 404, code: 'ATTACHMENT_NOT_FOUND' });
    expect(await cleanup.runOnce()).toBe(1);
    expect(existsSync(objectPath(expiring.oid))).toBe(false);

    clock.advance(600_000);
    expect(await apiError(alice.client.api('GET', `/v1/attachments/${abandoned.id}/parts`))).toEqual({ status: 404, code: 'ATTACHMENT_NOT_FOUND' });
    expect(await cleanup.runOnce()).toBeGreaterThanOrEqual(1);
    expect((await readdir(uploadsDir()).catch(() => [])).length).toBe(0);
    expect(await apiError(alice.client.api('DELETE', `/v1/attachments/${abandoned.id}`))).toEqual({ status: 404, code: 'ATTACHMENT_NOT_FOUND' });
    clock.set(Date.now());
  });

  it.each([
    ['negative size', 'POST', '/v1/attachments', JSON.stringify({ size: -1 }), 400, 'VALIDATION_FAILED'],
    ['size below the smallest blob', 'POST', '/v1/attachments', JSON.stringify({ size: 612 }), 400, 'VALIDATION_FAILED'],
    ['fractional size', 'POST', '/v1/attachments', JSON.stringify({ size: 1000.5 }), 400, 'VALIDATION_FAILED'],
    ['non-numeric size', 'POST', '/v1/attachments', JSON.stringify({ size: '1000' }), 400, 'VALIDATION_FAILED'],
    ['huge size', 'POST', '/v1/attachments', JSON.stringify({ size: 1e300 }), 400, 'VALIDATION_FAILED'],
    ['size over the maximum', 'POST', '/v1/attachments', JSON.stringify({ size: 2 ** 40 }), 413, 'ATTACHMENT_TOO_LARGE'],
    ['missing size', 'POST', '/v1/attachments', JSON.stringify({}), 400, 'VALIDATION_FAILED'],
    ['unknown field', 'POST', '/v1/attachments', JSON.stringify({ size: 1000, name: 'x' }), 400, 'VALIDATION_FAILED'],
    ['expiry in the past', 'POST', '/v1/attachments', JSON.stringify({ size: 1000, expiresAt: 1 }), 400, 'ALREADY_EXPIRED'],
    ['malformed JSON', 'POST', '/v1/attachments', '{"size": 10', 400, 'MALFORMED_JSON'],
    ['array body', 'POST', '/v1/attachments', '[1,2]', 400, 'VALIDATION_FAILED'],
    ['unknown id', 'GET', `/v1/attachments/${Buffer.alloc(16, 7).toString('base64url')}`, undefined, 404, 'ATTACHMENT_NOT_FOUND'],
    ['unknown id (complete)', 'POST', `/v1/attachments/${Buffer.alloc(16, 7).toString('base64url')}/complete`, undefined, 404, 'ATTACHMENT_NOT_FOUND'],
    ['unknown id (parts)', 'GET', `/v1/attachments/${Buffer.alloc(16, 7).toString('base64url')}/parts`, undefined, 404, 'ATTACHMENT_NOT_FOUND'],
    ['unknown id (delete)', 'DELETE', `/v1/attachments/${Buffer.alloc(16, 7).toString('base64url')}`, undefined, 404, 'ATTACHMENT_NOT_FOUND'],
    ['malformed id', 'GET', '/v1/attachments/not-an-id', undefined, 400, 'VALIDATION_FAILED'],
    ['malformed id (too long)', 'POST', `/v1/attachments/${'A'.repeat(40)}/complete`, undefined, 400, 'VALIDATION_FAILED'],
    ['non-canonical id', 'GET', `/v1/attachments/${'A'.repeat(21)}B`, undefined, 400, 'VALIDATION_FAILED'],
  ])('bad input: %s → 4xx with a stable code', async (_name, method, p, body, status, code) => {
    expect(await raw(method, p, body !== undefined ? { body } : {})).toEqual({ status, code });
  });

  it('refuses requests without a token', async () => {
    expect(await raw('POST', '/v1/attachments', { body: JSON.stringify({ size: 1000 }), token: null })).toEqual({ status: 401, code: 'UNAUTHENTICATED' });
  });

  it('Alice sends a file to Bob end to end; Bob forwards the same pointer to Carol without re-uploading', async () => {
    const a = await newAccount(stack.origin);
    const b = await newAccount(stack.origin);
    const c = await newAccount(stack.origin);
    try {
      const f = await file('photo.jpg', 300_000);
      const pointer = await uploadFile(a.client, f.path, { contentType: 'image/jpeg' });
      await a.messenger.sendContent(b.client.identity.accountIdText, attachmentContent(pointer));
      await waitFor(() => b.inbox.some((m) => m.content.k === 'att'), 10_000, 'the attachment message');
      const received = pointerOf(b.inbox.find((m) => m.content.k === 'att')!.content)!;
      expect(received).toEqual({ ...pointer, name: 'photo.jpg' });
      const out = path.join(dir, 'photo.out');
      await downloadFile(b.client, received, out);
      expect((await readFile(out)).equals(f.bytes)).toBe(true);

      await b.messenger.sendContent(c.client.identity.accountIdText, attachmentContent(received));
      await waitFor(() => c.inbox.some((m) => m.content.k === 'att'), 10_000, 'the forwarded message');
      const forwarded = pointerOf(c.inbox.find((m) => m.content.k === 'att')!.content)!;
      expect(forwarded.oid).toBe(pointer.oid);
      const out2 = path.join(dir, 'photo2.out');
      await downloadFile(c.client, forwarded, out2);
      expect((await readFile(out2)).equals(f.bytes)).toBe(true);
    } finally {
      for (const d of [a, b, c]) await d.client.close();
    }
  });
});

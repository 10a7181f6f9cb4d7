import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createReadStream, createWriteStream } from 'node:fs';
import { readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import {
  AttachmentEncryptor,
  attachmentEsize,
  b64uDecode,
  b64uEncode,
  decryptAttachment,
  envelopeExpiry,
  randomBytes,
} from '@umbra/crypto';
import type { SendResult, AttachmentPartsResponse, CompleteAttachmentResponse, CreateAttachmentResponse, DownloadAttachmentResponse, PartUrl } from '@umbra/protocol';
import type { UmbraClient } from './client';
import type { Timer } from './history';
import type { Messenger } from './messenger';
import { attachmentContent, type AttachmentPointer, type FileProgress } from './attachments/attachment-pointer';
import { UmbraApiError } from './errors';

// The pointer and its Content are browser-safe and shared with the browser path (./attachments).
export { attachmentContent, pointerOf, type AttachmentPointer, type FileProgress } from './attachments/attachment-pointer';

export interface UploadFileOptions {
  /** Server-side expiry (ms), e.g. the message timer's expires_at; absent = maximum retention. */
  expiresAt?: number;
  contentType?: string;
  /** File name in the pointer; defaults to the path's base name. */
  name?: string;
  /** Where to keep the resumable upload state; a later call with the same path continues a crashed upload. */
  statePath?: string;
  /** Parts uploaded at once (default 4; memory is about this × the part size). */
  concurrency?: number;
  onProgress?: (p: FileProgress) => void;
  signal?: AbortSignal;
}

export interface FileSource {
  size: number;
  name?: string;
  /** Opens the plaintext from its beginning (called again when an upload resumes). */
  open(): AsyncIterable<Uint8Array>;
  /** Identifies this version of the content, so a resumed upload never mixes two versions. */
  version?: string;
}

interface UploadState {
  v: 1;
  id: string;
  key: string;
  salt: string;
  size: number;
  esize: number;
  version: string;
}

const READ_CHUNK = 1024 * 1024;
/** Upload URLs this close to their expiry are replaced before use. */
const URL_REFRESH_MARGIN_MS = 30_000;

function fileSource(path: string, size: number, mtimeMs: number): FileSource {
  return { size, name: basename(path), version: `${size}:${mtimeMs}`, open: () => createReadStream(path, { highWaterMark: READ_CHUNK }) };
}

/**
 * PUT to a pre-signed URL with node:http(s): fetch() would copy every part into a new buffer
 * (undici clones BufferSource bodies), which doubles the upload's memory.
 */
function putBytes(url: string, body: Uint8Array, signal?: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(target, { method: 'PUT', headers: { 'content-type': 'application/octet-stream', 'content-length': body.length }, ...(signal ? { signal } : {}) }, (res) => {
      res.resume();
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        if (status < 200 || status >= 300) reject(new UmbraApiError(status, 'UNAVAILABLE', `object store refused the upload (${status})`));
        else resolve(String(res.headers.etag ?? ''));
      });
      res.on('error', reject);
    });
    req.on('error', (err) => reject(signal?.aborted ? (signal.reason ?? err) : new UmbraApiError(0, 'UNAVAILABLE', `upload failed: ${err.message}`)));
    req.end(body);
  });
}

/**
 * Encrypts a file as it streams (PROTOCOL.md §9) and uploads the blob with pre-signed URLs (parts
 * in parallel above the server's threshold), then completes it. Returns the pointer to send.
 * With `statePath`, an interrupted upload resumes: the same key re-encrypts the same content and
 * only the parts the store lacks are sent (a part whose bytes differ refuses the resume).
 */
export async function uploadFile(client: UmbraClient, source: string | FileSource, opts: UploadFileOptions = {}): Promise<AttachmentPointer> {
  let src: FileSource;
  if (typeof source === 'string') {
    const st = await stat(source);
    if (!st.isFile()) throw new Error(`${source} is not a file`);
    src = fileSource(source, st.size, st.mtimeMs);
  } else {
    src = source;
  }
  const esize = attachmentEsize(src.size);
  const version = src.version ?? `${src.size}`;
  let state = opts.statePath ? await loadState(opts.statePath) : undefined;
  if (state && (state.size !== src.size || state.version !== version || state.esize !== esize)) state = undefined;

  let upload:
    | { kind: 'single'; url: string }
    | { kind: 'multipart'; partSize: number; partCount: number; missing: Map<number, string>; uploaded: Map<number, string>; urlExpiresAt: number }
    | undefined;
  if (state) {
    try {
      const parts = await client.api<AttachmentPartsResponse>('GET', `/v1/attachments/${state.id}/parts`);
      upload =
        parts.kind === 'single'
          ? { kind: 'single', url: parts.missing[0]?.url ?? '' }
          : { kind: 'multipart', partSize: parts.partSize, partCount: parts.partCount, missing: urlMap(parts.missing), uploaded: new Map(parts.uploaded.map((p) => [p.partNumber, p.etag])), urlExpiresAt: parts.urlExpiresAt };
      if (parts.kind === 'single' && parts.missing.length === 0) upload = { kind: 'single', url: '' };
    } catch (err) {
      if (!(err instanceof UmbraApiError) || (err.status !== 404 && err.code !== 'ATTACHMENT_ALREADY_COMPLETE')) throw err;
      state = undefined;
    }
  }
  if (!state || !upload) {
    const created = await client.api<CreateAttachmentResponse>('POST', '/v1/attachments', { size: esize, ...(opts.expiresAt ? { expiresAt: opts.expiresAt } : {}) });
    state = { v: 1, id: created.id, key: b64uEncode(randomBytes(32)), salt: b64uEncode(randomBytes(16)), size: src.size, esize, version };
    upload =
      created.upload.kind === 'single'
        ? { kind: 'single', url: created.upload.url }
        : { kind: 'multipart', partSize: created.upload.partSize, partCount: created.upload.partCount, missing: urlMap(created.upload.parts), uploaded: new Map(), urlExpiresAt: created.upload.urlExpiresAt };
    if (opts.statePath) await writeFile(opts.statePath, JSON.stringify(state), { mode: 0o600 });
  }

  const enc = new AttachmentEncryptor(src.size, { key: b64uDecode(state.key), salt: b64uDecode(state.salt) });
  const blob = enc.stream(src.open());
  let done = 0;
  const progress = (n: number) => {
    done += n;
    opts.onProgress?.({ done, total: esize });
  };

  if (upload.kind === 'single') {
    const whole = Buffer.allocUnsafe(esize);
    let o = 0;
    for await (const piece of blob) {
      whole.set(piece, o);
      o += piece.length;
    }
    if (upload.url) await putBytes(upload.url, whole, opts.signal);
    progress(esize);
  } else {
    const { partSize, partCount, missing, uploaded } = upload;
    const id = state.id;
    // Upload URLs are short-lived (each signs its part's length and expires): fetch fresh ones when they
    // lapse, ahead of time by the clock and once more if the store refuses one anyway (clock skew).
    let urlExpiresAt = upload.urlExpiresAt;
    let refreshing: Promise<void> | undefined;
    const refresh = () =>
      (refreshing ??= client
        .api<AttachmentPartsResponse>('GET', `/v1/attachments/${id}/parts`)
        .then((fresh) => {
          for (const p of fresh.missing) missing.set(p.partNumber, p.url);
          urlExpiresAt = fresh.urlExpiresAt;
        })
        .finally(() => (refreshing = undefined)));
    const putPart = async (partNumber: number, bytes: Uint8Array) => {
      if (Date.now() >= urlExpiresAt - URL_REFRESH_MARGIN_MS) await refresh();
      const url = missing.get(partNumber);
      if (!url) throw new Error(`no upload URL for part ${partNumber}`);
      try {
        await putBytes(url, bytes, opts.signal);
      } catch (err) {
        if (!(err instanceof UmbraApiError) || err.status !== 403) throw err;
        await refresh();
        await putBytes(missing.get(partNumber) ?? url, bytes, opts.signal);
      }
    };
    const concurrency = Math.max(1, opts.concurrency ?? 4);
    const inFlight = new Set<Promise<void>>();
    let failure: unknown;
    // Part buffers are reused (at most `concurrency` + 1 exist): memory stays flat whatever the file size,
    // instead of waiting for the GC to notice freed part buffers.
    const pool: Buffer[] = [];
    const take = () => pool.pop() ?? Buffer.allocUnsafe(Math.min(partSize, esize));
    const send = (partNumber: number, buffer: Buffer, length: number) => {
      const bytes = buffer.subarray(0, length);
      const known = uploaded.get(partNumber);
      if (known !== undefined) {
        // Already stored: it must be these very bytes (same key, same nonces, same content).
        if (known.replace(/"/g, '') !== createHash('md5').update(bytes).digest('hex')) throw new Error(`part ${partNumber} on the server differs from this file; the upload cannot resume`);
        progress(bytes.length);
        pool.push(buffer);
        return;
      }
      if (!missing.has(partNumber)) throw new Error(`no upload URL for part ${partNumber}`);
      const p: Promise<void> = putPart(partNumber, bytes).then(
        () => {
          inFlight.delete(p);
          pool.push(buffer);
          progress(bytes.length);
        },
        (err: unknown) => {
          inFlight.delete(p);
          failure ??= err;
        },
      );
      inFlight.add(p);
    };
    let part = take();
    let partLength = Math.min(partSize, esize);
    let fill = 0;
    let partNumber = 1;
    for await (const piece of blob) {
      let off = 0;
      while (off < piece.length) {
        const n = Math.min(partLength - fill, piece.length - off);
        part.set(piece.subarray(off, off + n), fill);
        fill += n;
        off += n;
        if (fill === partLength) {
          while (inFlight.size >= concurrency) await Promise.race(inFlight);
          if (failure) throw failure;
          if (opts.signal?.aborted) throw opts.signal.reason ?? new Error('aborted');
          send(partNumber, part, partLength);
          partNumber++;
          partLength = Math.min(partSize, Math.max(esize - (partNumber - 1) * partSize, 0));
          part = partLength > 0 ? take() : part;
          fill = 0;
        }
      }
    }
    await Promise.all(inFlight);
    if (failure) throw failure;
    if (partNumber - 1 !== partCount) throw new Error(`produced ${partNumber - 1} parts, the server expects ${partCount}`);
  }
  const dig = b64uEncode(enc.digest);
  await client.api<CompleteAttachmentResponse>('POST', `/v1/attachments/${state.id}/complete`);
  if (opts.statePath) await rm(opts.statePath, { force: true });
  const name = opts.name ?? src.name;
  return { oid: state.id, key: state.key, dig, size: src.size, esize, ct: opts.contentType ?? 'application/octet-stream', ...(name ? { name } : {}) };
}

export interface DownloadFileOptions {
  onProgress?: (p: FileProgress) => void;
  signal?: AbortSignal;
}

/**
 * Downloads a blob, decrypts and verifies it as it streams, and writes the plaintext to `dest`
 * (through `dest.part`, renamed at the end). On any failure the partial output is deleted.
 */
export async function downloadFile(client: UmbraClient, pointer: AttachmentPointer, dest: string, opts: DownloadFileOptions = {}): Promise<void> {
  const secrets = { key: b64uDecode(pointer.key), digest: b64uDecode(pointer.dig), size: pointer.size, esize: pointer.esize };
  const link = await client.api<DownloadAttachmentResponse>('GET', `/v1/attachments/${encodeURIComponent(pointer.oid)}`);
  const tmp = `${dest}.part`;
  const out = createWriteStream(tmp, { mode: 0o600 });
  let writeError: unknown;
  out.on('error', (err) => (writeError ??= err));
  try {
    const res = await fetch(link.url, opts.signal ? { signal: opts.signal } : {});
    if (!res.ok || !res.body) throw new UmbraApiError(res.status, res.status === 404 ? 'ATTACHMENT_NOT_FOUND' : 'UNAVAILABLE', `object store answered ${res.status}`);
    let done = 0;
    const counted = async function* (body: AsyncIterable<Uint8Array>) {
      for await (const piece of body) {
        done += piece.length;
        opts.onProgress?.({ done, total: pointer.esize });
        yield piece;
      }
    };
    const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
    for await (const plain of decryptAttachment(counted(body), secrets)) {
      if (writeError) throw writeError;
      if (!out.write(plain)) await new Promise<void>((r) => out.once('drain', () => r()));
    }
    out.end();
    await finished(out);
    await rename(tmp, dest);
  } catch (err) {
    if (!out.destroyed) await new Promise<void>((r) => out.destroy().once('close', () => r()));
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Uploads a file and sends its pointer to `peer` under the conversation's vanishing timer (§8, §9):
 * the attachment is uploaded with the message's expiry, and the send names it so the servers delete
 * it when the message vanishes. `timer` overrides the conversation's.
 */
export async function sendFile(
  messenger: Messenger,
  peer: string,
  source: string | FileSource,
  opts: Omit<UploadFileOptions, 'expiresAt'> & { timer?: Timer | null; now?: () => number } = {},
): Promise<{ pointer: AttachmentPointer; result: SendResult }> {
  const { timer: override, now = () => Date.now(), ...upload } = opts;
  const timer = override === undefined ? await messenger.timer(peer) : override;
  const ts = now();
  const exp = timer ? { exp: timer } : {};
  const { expiresAt } = envelopeExpiry({ ts, ...exp });
  const pointer = await uploadFile(messenger.client, source, { ...upload, ...(expiresAt > 0 ? { expiresAt } : {}) });
  const result = await messenger.sendUserContent(peer, attachmentContent(pointer, { ts, ...exp }));
  return { pointer, result };
}

function urlMap(parts: PartUrl[]): Map<number, string> {
  return new Map(parts.map((p) => [p.partNumber, p.url]));
}

async function loadState(path: string): Promise<UploadState | undefined> {
  try {
    const s = JSON.parse(await readFile(path, 'utf8')) as UploadState;
    return s.v === 1 && typeof s.id === 'string' && typeof s.key === 'string' ? s : undefined;
  } catch {
    return undefined;
  }
}

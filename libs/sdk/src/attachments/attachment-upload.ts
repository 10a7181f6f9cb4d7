import { md5 } from '@noble/hashes/legacy.js';
import {
  AttachmentEncryptor,
  attachmentEsize,
  b64uDecode,
  b64uEncode,
  hexEncode,
  envelopeExpiry,
  randomBytes,
  webCryptoAeadProvider,
  type AeadProvider,
} from '@umbra/crypto';
import type { AttachmentPartsResponse, CompleteAttachmentResponse, CreateAttachmentResponse, SendResult } from '@umbra/protocol';
import type { UmbraClient } from '../client';
import { UmbraApiError } from '../errors';
import type { Timer } from '../history';
import type { Messenger } from '../messenger';
import type { KeyValueStore } from '../store';
import { LocalState } from '../state/local.state';
import { STATE_FAMILIES, STATE_KEYS } from '../state/state.keys';
import { attachmentContent, type AttachmentPointer, type FileProgress } from './attachment-pointer';

/**
 * The browser-safe attachment path (PROTOCOL.md §9): fetch for the pre-signed URLs, WebCrypto for
 * AES-GCM, no Node module. It writes the same blob as `uploadFile` of `@umbra/sdk/node`.
 */

/** Plaintext to upload. A browser `Blob` or `File` is one (`blobSource`). */
export interface AttachmentSource {
  size: number;
  name?: string;
  /** MIME type; the pointer's `ct`. */
  type?: string;
  /** Opens the plaintext from its beginning (called again when an upload resumes). */
  open(): AsyncIterable<Uint8Array>;
  /** Identifies this version of the content, so a resumed upload never mixes two versions. */
  version?: string;
}

export interface ResumableUpload {
  /** Where the upload state is kept (it holds the file key: use an encrypted store). */
  store: KeyValueStore;
  /** Names this upload: the same key after a reload continues it (e.g. conversation + file fingerprint). */
  key: string;
  /** The application's own note, returned by `pendingUploads` (e.g. the conversation). */
  tag?: string;
}

export interface UploadAttachmentOptions {
  /** Server-side expiry (ms), e.g. the message timer's expires_at; absent = maximum retention. */
  expiresAt?: number;
  /** The pointer's `ct`; defaults to the source's type, else application/octet-stream. */
  contentType?: string;
  /** The pointer's file name; defaults to the source's. */
  name?: string;
  /** Playing time (ms) of a voice or video message, put in the pointer. */
  durationMs?: number;
  /** Keeps the upload's state in an SDK store so it resumes after a crash or a reload. */
  resume?: ResumableUpload;
  /** Parts uploaded at once (default 3; memory is about this × the part size). */
  concurrency?: number;
  onProgress?: (p: FileProgress) => void;
  signal?: AbortSignal;
  /** AES-GCM and SHA-256 provider; WebCrypto by default, wherever globalThis.crypto.subtle exists. */
  provider?: AeadProvider;
}

/** An upload that was started and not finished, as kept in the store. */
export interface PendingUpload {
  key: string;
  name?: string;
  size: number;
  contentType?: string;
  tag?: string;
  startedAt: number;
}

export interface UploadState {
  v: 1;
  id: string;
  key: string;
  salt: string;
  size: number;
  esize: number;
  version: string;
  name?: string;
  ct?: string;
  tag?: string;
  startedAt: number;
}

interface UploadPlan {
  partSize: number;
  partCount: number;
  /** Pre-signed PUT per missing part. */
  urls: Map<number, string>;
  /** ETag per part the store already holds. */
  uploaded: Map<number, string>;
  urlExpiresAt: number;
}

const READ_CHUNK = 1024 * 1024;
/** Upload URLs this close to their expiry are replaced before use. */
const URL_REFRESH_MARGIN_MS = 30_000;

/** Reads a Blob (or File) in 1 MiB slices; its name and lastModified make the version. */
export function blobSource(blob: Blob): AttachmentSource {
  const file = blob as Blob & { name?: string; lastModified?: number };
  return {
    size: blob.size,
    ...(file.name ? { name: file.name } : {}),
    ...(blob.type ? { type: blob.type } : {}),
    version: `${blob.size}:${file.lastModified ?? 0}:${file.name ?? ''}`,
    async *open() {
      for (let off = 0; off < blob.size; off += READ_CHUNK) yield new Uint8Array(await blob.slice(off, off + READ_CHUNK).arrayBuffer());
    },
  };
}

/** Unfinished uploads kept in `store` (after a reload: offer to resume them). */
export async function pendingUploads(store: KeyValueStore): Promise<PendingUpload[]> {
  const out: PendingUpload[] = [];
  for (const { suffix: key, value: s } of await new LocalState(store).entries(STATE_FAMILIES.upload)) {
    out.push({ key, size: s.size, startedAt: s.startedAt, ...(s.name ? { name: s.name } : {}), ...(s.ct ? { contentType: s.ct } : {}), ...(s.tag ? { tag: s.tag } : {}) });
  }
  return out.sort((a, b) => a.startedAt - b.startedAt);
}

/** Drops an unfinished upload: its state here and, when `client` is given, the server's upload and stored parts. */
export async function abandonUpload(store: KeyValueStore, key: string, client?: UmbraClient): Promise<void> {
  const state = new LocalState(store);
  const s = await state.get(STATE_KEYS.upload(key));
  if (s && client) {
    await client.api('DELETE', `/v1/attachments/${encodeURIComponent(s.id)}`).catch((err: unknown) => {
      if (!(err instanceof UmbraApiError) || err.status !== 404) throw err;
    });
  }
  await state.delete(STATE_KEYS.upload(key));
}

/**
 * Encrypts the source as it streams (PROTOCOL.md §9) and uploads the blob in parts with the
 * pre-signed URLs, then completes it. Returns the pointer to send. With `resume`, an interrupted
 * upload continues: the same key re-encrypts the same content, each part the store already holds
 * is checked against the bytes this run would send (MD5 = its ETag), and only missing parts are sent.
 */
export async function uploadAttachment(client: UmbraClient, source: AttachmentSource | Blob, opts: UploadAttachmentOptions = {}): Promise<AttachmentPointer> {
  const src = isSource(source) ? source : blobSource(source);
  const esize = attachmentEsize(src.size);
  const version = src.version ?? String(src.size);
  const name = opts.name ?? src.name;
  const ct = opts.contentType ?? (src.type || 'application/octet-stream');
  const resume = opts.resume ? { state: new LocalState(opts.resume.store), key: STATE_KEYS.upload(opts.resume.key) } : undefined;

  let state = resume ? await resume.state.get(resume.key) : undefined;
  if (state && (state.size !== src.size || state.version !== version || state.esize !== esize)) state = undefined;
  let plan = state ? await resumePlan(client, state.id) : undefined;
  if (!state || !plan) {
    const created = await client.api<CreateAttachmentResponse>('POST', '/v1/attachments', { size: esize, ...(opts.expiresAt ? { expiresAt: opts.expiresAt } : {}) });
    const up = created.upload;
    plan =
      up.kind === 'single'
        ? { partSize: esize, partCount: 1, urls: new Map([[1, up.url]]), uploaded: new Map(), urlExpiresAt: up.urlExpiresAt }
        : { partSize: up.partSize, partCount: up.partCount, urls: new Map(up.parts.map((p) => [p.partNumber, p.url])), uploaded: new Map(), urlExpiresAt: up.urlExpiresAt };
    state = {
      v: 1,
      id: created.id,
      key: b64uEncode(randomBytes(32)),
      salt: b64uEncode(randomBytes(16)),
      size: src.size,
      esize,
      version,
      startedAt: Date.now(),
      ...(name ? { name } : {}),
      ct,
      ...(opts.resume?.tag ? { tag: opts.resume.tag } : {}),
    };
    if (resume) await resume.state.set(resume.key, state);
  }

  const provider = opts.provider ?? browserProvider();
  const enc = new AttachmentEncryptor(src.size, { key: b64uDecode(state.key), salt: b64uDecode(state.salt), ...(provider ? { provider } : {}) });
  await new PartUploader(client, state.id, plan, esize, opts).run(enc.stream(src.open()));
  const dig = b64uEncode(enc.digest);
  await client.api<CompleteAttachmentResponse>('POST', `/v1/attachments/${encodeURIComponent(state.id)}/complete`);
  if (resume) await resume.state.delete(resume.key);
  return { oid: state.id, key: state.key, dig, size: src.size, esize, ct, ...(name ? { name } : {}), ...(opts.durationMs !== undefined ? { dur: Math.round(opts.durationMs) } : {}) };
}

/**
 * Uploads an attachment and sends its pointer to `conv` (a peer account or a group id) under the
 * conversation's vanishing timer (§8, §9): the upload expires with the message, and a 1:1 send names
 * it so the servers delete it when the message vanishes. `timer` overrides a 1:1 conversation's.
 */
export async function sendAttachment(
  messenger: Messenger,
  conv: string,
  source: AttachmentSource | Blob,
  opts: Omit<UploadAttachmentOptions, 'expiresAt'> & { timer?: Timer | null; now?: () => number } = {},
): Promise<{ pointer: AttachmentPointer; result: SendResult; id: string; ts: number }> {
  const { timer: override, now = () => Date.now(), ...upload } = opts;
  const group = await messenger.group(conv);
  const timer = override === undefined || group ? await messenger.timer(conv) : override;
  const ts = now();
  const exp = timer ? { exp: timer } : {};
  const { expiresAt } = envelopeExpiry({ ts, ...exp });
  const pointer = await uploadAttachment(messenger.client, source, { ...upload, ...(expiresAt > 0 ? { expiresAt } : {}) });
  const content = attachmentContent(pointer, { ts, ...exp });
  const result = group ? await messenger.sendGroupContent(conv, content) : await messenger.sendUserContent(conv, content);
  return { pointer, result, id: content.id, ts };
}

/** Cuts the blob stream into parts and PUTs them, a few at a time, refreshing URLs as they lapse. */
class PartUploader {
  /** Bytes of the parts stored, and of each part still being sent so far (browsers report those). */
  private stored = 0;
  private readonly sending = new Map<number, number>();
  private reported = 0;
  private refreshing: Promise<void> | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private failure: unknown;

  constructor(
    private readonly client: UmbraClient,
    private readonly id: string,
    private readonly plan: UploadPlan,
    private readonly esize: number,
    private readonly opts: UploadAttachmentOptions,
  ) {}

  async run(blob: AsyncIterable<Uint8Array>): Promise<void> {
    const { partSize, partCount } = this.plan;
    const esize = this.esize;
    const concurrency = Math.max(1, this.opts.concurrency ?? 3);
    const lengthOf = (n: number) => Math.min(partSize, esize - (n - 1) * partSize);
    let partNumber = 1;
    let part = new Uint8Array(lengthOf(1));
    let fill = 0;
    for await (const piece of blob) {
      let off = 0;
      while (off < piece.length) {
        const n = Math.min(part.length - fill, piece.length - off);
        part.set(piece.subarray(off, off + n), fill);
        fill += n;
        off += n;
        if (fill < part.length) continue;
        while (this.inFlight.size >= concurrency) await Promise.race(this.inFlight);
        if (this.failure) throw this.failure;
        if (this.opts.signal?.aborted) throw this.opts.signal.reason ?? new Error('aborted');
        this.send(partNumber, part);
        partNumber++;
        part = new Uint8Array(Math.max(0, lengthOf(partNumber)));
        fill = 0;
      }
    }
    await Promise.all(this.inFlight);
    if (this.failure) throw this.failure;
    if (partNumber - 1 !== partCount) throw new Error(`produced ${partNumber - 1} parts, the server expects ${partCount}`);
  }

  private send(partNumber: number, bytes: Uint8Array): void {
    const known = this.plan.uploaded.get(partNumber);
    if (known !== undefined) {
      // Already stored: it must be these very bytes (same key, same nonces, same content).
      if (known.replace(/"/g, '') !== hexEncode(md5(bytes))) throw new Error(`part ${partNumber} on the server differs from this file; the upload cannot resume`);
      this.stored += bytes.length;
      this.progress();
      return;
    }
    if (!this.plan.urls.has(partNumber)) throw new Error(`no upload URL for part ${partNumber}`);
    const p: Promise<void> = this.putPart(partNumber, bytes).then(
      () => {
        this.inFlight.delete(p);
        this.sending.delete(partNumber);
        this.stored += bytes.length;
        this.progress();
      },
      (err: unknown) => {
        this.inFlight.delete(p);
        this.sending.delete(partNumber);
        this.failure ??= err;
      },
    );
    this.inFlight.add(p);
  }

  /** Reports stored plus in-flight bytes, never less than before (a retried part starts again from 0). */
  private progress(): void {
    let done = this.stored;
    for (const n of this.sending.values()) done += n;
    if (done <= this.reported) return;
    this.reported = done;
    this.opts.onProgress?.({ done, total: this.esize });
  }

  private async putPart(partNumber: number, bytes: Uint8Array): Promise<void> {
    if (Date.now() >= this.plan.urlExpiresAt - URL_REFRESH_MARGIN_MS) await this.refresh();
    const sent = (n: number) => {
      this.sending.set(partNumber, n);
      this.progress();
    };
    try {
      await putBytes(this.plan.urls.get(partNumber)!, bytes, this.opts.signal, sent);
    } catch (err) {
      // The store refused the URL anyway (client clock skew): once more with a fresh one.
      if (!(err instanceof UmbraApiError) || err.status !== 403) throw err;
      await this.refresh();
      await putBytes(this.plan.urls.get(partNumber)!, bytes, this.opts.signal, sent);
    }
  }

  private refresh(): Promise<void> {
    return (this.refreshing ??= this.client
      .api<AttachmentPartsResponse>('GET', `/v1/attachments/${encodeURIComponent(this.id)}/parts`)
      .then((fresh) => {
        for (const p of fresh.missing) this.plan.urls.set(p.partNumber, p.url);
        this.plan.urlExpiresAt = fresh.urlExpiresAt;
      })
      .finally(() => (this.refreshing = undefined)));
  }
}

/**
 * PUT of one part. The body is bytes (never a stream), so the signed Content-Length is sent. Where
 * XMLHttpRequest exists (browsers) it is used, because it reports upload progress and fetch does not.
 */
function putBytes(url: string, body: Uint8Array, signal: AbortSignal | undefined, onSent: (bytes: number) => void): Promise<void> {
  return typeof XMLHttpRequest === 'undefined' ? fetchPut(url, body, signal) : xhrPut(url, body, signal, onSent);
}

function xhrPut(url: string, body: Uint8Array, signal: AbortSignal | undefined, onSent: (bytes: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason ?? new Error('aborted'));
    const xhr = new XMLHttpRequest();
    const abort = () => xhr.abort();
    signal?.addEventListener('abort', abort, { once: true });
    const settle = (err?: unknown) => {
      signal?.removeEventListener('abort', abort);
      if (err === undefined) resolve();
      else reject(err);
    };
    xhr.open('PUT', url);
    xhr.upload.onprogress = (e) => onSent(e.loaded);
    xhr.onload = () => settle(xhr.status >= 200 && xhr.status < 300 ? undefined : new UmbraApiError(xhr.status, 'UNAVAILABLE', `object store refused the upload (${xhr.status})`));
    xhr.onerror = () => settle(new UmbraApiError(0, 'UNAVAILABLE', 'upload failed: the object store could not be reached'));
    xhr.onabort = () => settle(signal?.reason ?? new Error('aborted'));
    xhr.send(body as Uint8Array<ArrayBuffer>);
  });
}

async function fetchPut(url: string, body: Uint8Array, signal: AbortSignal | undefined): Promise<void> {
  let res: Response;
  try {
    res = await fetch(url, { method: 'PUT', body: body as Uint8Array<ArrayBuffer>, ...(signal ? { signal } : {}) });
  } catch (err) {
    if (signal?.aborted) throw signal.reason ?? err;
    throw new UmbraApiError(0, 'UNAVAILABLE', `upload failed: ${err instanceof Error ? err.message : String(err)}`);
  }
  await res.body?.cancel();
  if (!res.ok) throw new UmbraApiError(res.status, 'UNAVAILABLE', `object store refused the upload (${res.status})`);
}

/** What the server still needs for an upload begun earlier, or undefined when it is gone or already complete. */
async function resumePlan(client: UmbraClient, id: string): Promise<UploadPlan | undefined> {
  try {
    const parts = await client.api<AttachmentPartsResponse>('GET', `/v1/attachments/${encodeURIComponent(id)}/parts`);
    return {
      partSize: parts.partSize,
      partCount: parts.partCount,
      urls: new Map(parts.missing.map((p) => [p.partNumber, p.url])),
      uploaded: new Map(parts.uploaded.map((p) => [p.partNumber, p.etag])),
      urlExpiresAt: parts.urlExpiresAt,
    };
  } catch (err) {
    if (err instanceof UmbraApiError && (err.status === 404 || err.code === 'ATTACHMENT_ALREADY_COMPLETE')) return undefined;
    throw err;
  }
}

/** WebCrypto wherever it exists (browsers, Node, Deno); else the crypto library's default. */
export function browserProvider(): AeadProvider | undefined {
  const subtle = (globalThis as { crypto?: Crypto }).crypto?.subtle;
  return subtle ? webCryptoAeadProvider(subtle) : undefined;
}

function isSource(s: AttachmentSource | Blob): s is AttachmentSource {
  return typeof (s as AttachmentSource).open === 'function';
}

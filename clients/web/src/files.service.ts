import type { AttachmentPointer } from '@umbra/sdk';
import type { ConversationStore } from './conversations.store';
import type { WebUmbra } from './session.service';

/** A file being sent from this page, or one an earlier page left unfinished. */
export interface UploadView {
  /** The SDK's resume key: the conversation and the file's name, size and modification time. */
  key: string;
  conv: string;
  name: string;
  size: number;
  /** Encrypted bytes stored so far, of `total` (0 until the first part is stored). */
  done: number;
  total: number;
  /** `interrupted`: left by an earlier page (a reload); picking the same file again resumes it. */
  state: 'uploading' | 'interrupted' | 'failed';
  error?: unknown;
  /** The file picked on this page (kept for a retry; an earlier page's is gone). */
  file?: File;
}

/** A received (or sent) file on this page: being fetched and verified, verified (a blob URL), or refused. */
export interface DownloadView {
  /** The conversation whose message carries the file. */
  conv: string;
  /** Kept until then (ms) even when its conversation does not show the message yet (a file just sent). */
  keepUntil: number;
  state: 'loading' | 'ready' | 'failed';
  done: number;
  total: number;
  url?: string;
  error?: unknown;
}

/** Images and voice messages up to this size are fetched without asking, for the inline preview. */
export const AUTO_DOWNLOAD_BYTES = 16 * 1024 * 1024;
/** How long a just-sent file may wait for its message to appear in its conversation. */
const PRUNE_GRACE_MS = 10_000;

/**
 * Files on this page: sending (encrypted in the browser, uploaded in parts with progress, resumable
 * after a reload from the state the SDK keeps in the encrypted store) and downloading (verified
 * before anything is shown or saved). Views subscribe and re-render on every change.
 */
export class FileService {
  private readonly uploads = new Map<string, UploadView>();
  private readonly downloads = new Map<string, DownloadView>();
  private readonly aborts = new Set<AbortController>();
  private readonly listeners = new Set<() => void>();
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly umbra: WebUmbra,
    private readonly conversations: ConversationStore,
  ) {}

  /** Shows the uploads an earlier page left unfinished. */
  async start(): Promise<void> {
    for (const p of await this.umbra.files.pending()) {
      if (!p.tag || this.uploads.has(p.key)) continue;
      this.uploads.set(p.key, { key: p.key, conv: p.tag, name: p.name ?? 'file', size: p.size, done: 0, total: 0, state: 'interrupted' });
    }
    // A message that vanished or was deleted takes its decrypted file out of the page's memory too.
    this.unsubscribe = this.conversations.subscribe(() => this.prune());
    this.changed();
  }

  /** Stops every transfer and releases the blob URLs (the page logs out). */
  close(): void {
    this.unsubscribe?.();
    for (const a of this.aborts) a.abort(new Error('closed'));
    for (const d of this.downloads.values()) if (d.url) URL.revokeObjectURL(d.url);
    this.downloads.clear();
    this.uploads.clear();
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  uploadsIn(conv: string): UploadView[] {
    return [...this.uploads.values()].filter((u) => u.conv === conv);
  }

  download(oid: string): DownloadView | undefined {
    return this.downloads.get(oid);
  }

  /**
   * Encrypts and sends a file to a conversation. The same file (name, size, modification time) in
   * the same conversation continues an upload an earlier page began. Resolves when the message is
   * sent; a failure stays listed (with its error) until retried or dismissed.
   */
  async send(conv: string, file: File, opts: { durationMs?: number } = {}): Promise<void> {
    const key = `${conv}/${file.name}:${file.size}:${file.lastModified}`;
    if (this.uploads.get(key)?.state === 'uploading') return;
    const u: UploadView = { key, conv, name: file.name || 'file', size: file.size, done: 0, total: 0, state: 'uploading', file };
    this.uploads.set(key, u);
    this.changed();
    const abort = new AbortController();
    this.aborts.add(abort);
    try {
      const sent = await this.umbra.files.send(conv, file, {
        resume: { key, tag: conv },
        signal: abort.signal,
        ...(opts.durationMs !== undefined ? { durationMs: opts.durationMs } : {}),
        onProgress: (p) => {
          u.done = p.done;
          u.total = p.total;
          this.changed();
        },
      });
      // The sender sees its own file without fetching it back.
      this.downloads.set(sent.pointer.oid, { conv, keepUntil: Date.now() + PRUNE_GRACE_MS, state: 'ready', done: sent.pointer.esize, total: sent.pointer.esize, url: URL.createObjectURL(file) });
      this.uploads.delete(key);
      await this.conversations.refresh(conv);
    } catch (err) {
      u.state = 'failed';
      u.error = err;
      throw err;
    } finally {
      this.aborts.delete(abort);
      this.changed();
    }
  }

  /** Drops an unfinished or failed upload, here and on the server. */
  async discard(key: string): Promise<void> {
    await this.umbra.files.abandon(key);
    this.uploads.delete(key);
    this.changed();
  }

  /** Fetches, decrypts and verifies a file once; `retry` starts over after a failure. */
  async fetch(conv: string, pointer: AttachmentPointer, retry = false): Promise<void> {
    const known = this.downloads.get(pointer.oid);
    if (known && !(retry && known.state === 'failed')) return;
    const d: DownloadView = { conv, keepUntil: 0, state: 'loading', done: 0, total: pointer.esize };
    this.downloads.set(pointer.oid, d);
    this.changed();
    const abort = new AbortController();
    this.aborts.add(abort);
    try {
      const blob = await this.umbra.files.download(pointer, {
        signal: abort.signal,
        onProgress: (p) => {
          d.done = p.done;
          this.changed();
        },
      });
      d.url = URL.createObjectURL(blob);
      d.state = 'ready';
    } catch (err) {
      d.state = 'failed';
      d.error = err;
    } finally {
      this.aborts.delete(abort);
      this.changed();
    }
  }

  /** Releases the files of messages no longer in their conversation (vanished, deleted, recalled). */
  private prune(): void {
    const now = Date.now();
    for (const [oid, d] of this.downloads) {
      if (now < d.keepUntil || d.state === 'loading') continue;
      const c = this.conversations.get(d.conv);
      if (c?.messages.some((m) => m.file?.oid === oid)) continue;
      if (d.url) URL.revokeObjectURL(d.url);
      this.downloads.delete(oid);
    }
  }

  private changed(): void {
    for (const l of this.listeners) l();
  }
}

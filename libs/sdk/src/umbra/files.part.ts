import { envelopeExpiry, type Content } from '@umbra/crypto';
import { pointerOf, type AttachmentPointer } from '../attachments/attachment-pointer';
import { abandonUpload, pendingUploads, type PendingUpload } from '../attachments/attachment-upload';
import type { HistoryEntry, Timer } from '../history';
import type { ReceivedMessage } from '../messenger';
import type { DownloadArgs, FileDownloadOptions, FileTransport, FileUploadOptions } from './files.transport';
import { newContent, sendToConversation, type SentMessage } from './messages.part';
import type { UmbraCore } from './umbra.core';
import { UmbraError } from './umbra.errors';

export interface FileSendOptions extends Omit<FileUploadOptions, 'expiresAt' | 'resume'> {
  /** This message's own vanishing timer in a 1:1 conversation (default: the conversation's; a group's always applies). */
  timer?: Timer;
  /**
   * Keeps the upload's state in this device's store (`webFiles()`): sending the same file under the
   * same `key` after a reload continues it; `files.pending()` lists it meanwhile, with its `tag`.
   */
  resume?: { key: string; tag?: string };
}

/** Something that carries a file: a received message, a history entry, its Content, or the pointer itself. */
export type FileRef = AttachmentPointer | Content | ReceivedMessage | HistoryEntry;

/**
 * `umbra.files`: any file, end-to-end encrypted as it streams, uploaded straight to the object
 * store, and sent as a pointer in a message. It vanishes with the message: the upload carries the
 * message's deadline and the send names it, so the servers delete both.
 */
export class FilesPart<Source, Target, Result> {
  constructor(
    private readonly core: UmbraCore,
    private readonly transport: FileTransport<Source, Target, Result> | undefined,
  ) {}

  /** Encrypts and uploads `source`, then sends its pointer to the conversation (peer or group). */
  async send(conv: string, source: Source, opts: FileSendOptions = {}): Promise<SentMessage & { pointer: AttachmentPointer }> {
    const transport = this.need();
    const { timer: override, resume, ...upload } = opts;
    const group = await this.core.messenger.group(conv);
    const timer = (group ? undefined : override) ?? (await this.core.messenger.timer(conv));
    const ts = this.core.now();
    const exp = timer ? { exp: timer } : {};
    const { expiresAt } = envelopeExpiry({ ts, ...exp });
    const kept = resume ? { resume: { store: this.core.store, ...resume } } : {};
    const pointer = await transport.upload(this.core.client, source, { ...upload, ...kept, ...(expiresAt > 0 ? { expiresAt } : {}) });
    const sent = await sendToConversation(this.core, conv, newContent(this.core, 'att', { ts, ...pointer, ...exp }));
    return { ...sent, pointer };
  }

  /** Downloads a received file, decrypting and verifying it as it streams (a tampered blob fails, nothing is kept). */
  download(ref: FileRef, ...args: DownloadArgs<Target>): Promise<Result> {
    const transport = this.need();
    const pointer = this.pointerOf(ref);
    if (!pointer) throw new UmbraError('NOT_A_FILE', 'this message carries no file (or its pointer is malformed)');
    const [target, opts] = (transport.targetless ? [undefined, args[0]] : args) as [Target, FileDownloadOptions | undefined];
    return transport.download(this.core.client, pointer, target, opts ?? {});
  }

  /** Uploads sent with `resume` that did not finish (e.g. the page was reloaded), oldest first: send the same source again to continue. */
  pending(): Promise<PendingUpload[]> {
    return pendingUploads(this.core.store);
  }

  /** Drops an unfinished upload: its state here and the server's upload with its stored parts. */
  async abandon(key: string): Promise<void> {
    this.core.assertOpen();
    await abandonUpload(this.core.store, key, this.core.client);
  }

  /** The file pointer a message carries (validated), or undefined. */
  pointerOf(ref: FileRef): AttachmentPointer | undefined {
    if ('k' in ref && 'v' in ref) return pointerOf(ref as Content);
    if ('content' in ref) return pointerOf((ref as ReceivedMessage | HistoryEntry).content);
    return pointerOf({ v: 1, id: '', ts: 0, k: 'att', ...ref });
  }

  private need(): FileTransport<Source, Target, Result> {
    this.core.assertOpen();
    if (!this.transport) throw new UmbraError('NO_FILE_TRANSPORT', 'no file transport: open Umbra with files: nodeFiles() from @umbra/sdk/node (or a browser transport)');
    return this.transport;
  }
}

import type { UmbraClient } from '../client';
import type { AttachmentPointer, FileProgress } from '../attachments/attachment-pointer';
import type { ResumableUpload } from '../attachments/attachment-upload';

export interface FileUploadOptions {
  /** Server-side expiry (ms): the message's vanishing deadline; absent = maximum retention. */
  expiresAt?: number;
  contentType?: string;
  name?: string;
  /** Playing time (ms) of a voice or video message, put in the pointer (`webFiles()`). */
  durationMs?: number;
  /** Where the upload's state is kept so the same key continues it (`webFiles()`; `nodeFiles` uses its `stateDir`). */
  resume?: ResumableUpload;
  onProgress?: (p: FileProgress) => void;
  signal?: AbortSignal;
}

export interface FileDownloadOptions {
  onProgress?: (p: FileProgress) => void;
  signal?: AbortSignal;
}

/**
 * Moves encrypted blobs between a platform's files and the object store (`nodeFiles()` from
 * `@umbra/sdk/node` reads and writes paths). `Source` is what `files.send` takes, `Target` where
 * `files.download` puts the plaintext (`undefined`: nowhere, the result carries it), `Result` what
 * the download returns. A transport verifies the digest before it hands out any plaintext.
 */
export interface FileTransport<Source = never, Target = never, Result = void> {
  /** True when `download` takes no target (Target is undefined): `files.download(message, opts)`. */
  readonly targetless?: boolean;
  upload(client: UmbraClient, source: Source, opts: FileUploadOptions): Promise<AttachmentPointer>;
  download(client: UmbraClient, pointer: AttachmentPointer, target: Target, opts: FileDownloadOptions): Promise<Result>;
}

/** `files.download`'s arguments after the message: the target (unless the transport needs none), then options. */
export type DownloadArgs<Target> = [Target] extends [undefined] ? [opts?: FileDownloadOptions] : [target: Target, opts?: FileDownloadOptions];

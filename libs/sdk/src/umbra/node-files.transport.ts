import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { downloadFile, uploadFile, type FileSource } from '../files';
import type { FileTransport } from './files.transport';

export interface NodeFilesOptions {
  /**
   * Where interrupted uploads keep their state (it holds the file key: a private directory). Sending
   * the same path again continues the upload. Without it an interrupted upload starts over.
   */
  stateDir?: string;
  /** Parts uploaded at once (default 4; memory is about this × the part size). */
  concurrency?: number;
}

/**
 * The Node file transport for `Umbra.open({ files: nodeFiles() })`: `files.send(conv, path)` streams
 * a file from disk (or any FileSource), `files.download(message, path)` writes the verified
 * plaintext to `path` (through `path.part`, renamed at the end; nothing is left on failure).
 */
export function nodeFiles(opts: NodeFilesOptions = {}): FileTransport<string | FileSource, string, void> {
  return {
    async upload(client, source, upload) {
      let statePath: string | undefined;
      if (opts.stateDir && typeof source === 'string') {
        await mkdir(opts.stateDir, { recursive: true, mode: 0o700 });
        statePath = path.join(opts.stateDir, `${createHash('sha256').update(path.resolve(source)).digest('base64url')}.json`);
      }
      return uploadFile(client, source, { ...upload, ...(statePath ? { statePath } : {}), ...(opts.concurrency ? { concurrency: opts.concurrency } : {}) });
    },
    download: (client, pointer, dest, download) => downloadFile(client, pointer, dest, download),
  };
}

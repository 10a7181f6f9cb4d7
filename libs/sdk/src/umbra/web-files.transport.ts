import { downloadAttachment } from '../attachments/attachment-download';
import { uploadAttachment, type AttachmentSource } from '../attachments/attachment-upload';
import type { FileTransport } from './files.transport';

/**
 * The browser file transport for `Umbra.open({ files: webFiles() })` (fetch and WebCrypto, no Node
 * module; it runs in Node too): `files.send(conv, blob)` takes a Blob or File, and
 * `files.download(message)` returns the verified plaintext as a Blob.
 */
export function webFiles(): FileTransport<Blob | AttachmentSource, undefined, Blob> {
  return {
    targetless: true,
    upload: (client, source, opts) => uploadAttachment(client, source, opts),
    download: (client, pointer, _target, opts) => downloadAttachment(client, pointer, opts),
  };
}

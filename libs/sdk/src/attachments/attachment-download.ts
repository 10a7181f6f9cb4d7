import { CryptoError, b64uDecode, decryptAttachment, type AeadProvider } from '@umbra/crypto';
import type { DownloadAttachmentResponse } from '@umbra/protocol';
import type { UmbraClient } from '../client';
import { UmbraApiError } from '../errors';
import type { AttachmentPointer, FileProgress } from './attachment-pointer';
import { browserProvider } from './attachment-upload';

export interface DownloadAttachmentOptions {
  onProgress?: (p: FileProgress) => void;
  signal?: AbortSignal;
  /** AES-GCM and SHA-256 provider; WebCrypto by default, wherever globalThis.crypto.subtle exists. */
  provider?: AeadProvider;
}

/**
 * The downloaded blob is not the one the sender encrypted: changed, cut short, extended, or under
 * another key or digest than the pointer names. `code` is the CryptoError code that caught it.
 */
export class AttachmentVerificationError extends Error {
  constructor(
    readonly code: CryptoError['code'],
    readonly detail: string,
  ) {
    super(`The file failed verification (${detail}): it was changed or damaged after it was sent, so it was not saved.`);
    this.name = 'AttachmentVerificationError';
  }
}

/**
 * Downloads a blob and decrypts it as it streams, yielding plaintext one authenticated 64 KiB chunk
 * at a time. The digest is checked after the last chunk: a caller that stores chunks as they come
 * must discard them when this throws. Verification failures are AttachmentVerificationError.
 */
export async function* attachmentPlaintext(client: UmbraClient, pointer: AttachmentPointer, opts: DownloadAttachmentOptions = {}): AsyncGenerator<Uint8Array, void, undefined> {
  const link = await client.api<DownloadAttachmentResponse>('GET', `/v1/attachments/${encodeURIComponent(pointer.oid)}`);
  let res: Response;
  try {
    res = await fetch(link.url, opts.signal ? { signal: opts.signal } : {});
  } catch (err) {
    if (opts.signal?.aborted) throw opts.signal.reason ?? err;
    throw new UmbraApiError(0, 'UNAVAILABLE', `download failed: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel();
    throw new UmbraApiError(res.status, res.status === 404 ? 'ATTACHMENT_NOT_FOUND' : 'UNAVAILABLE', `object store answered ${res.status}`);
  }
  const reader = res.body.getReader();
  let done = 0;
  const body = async function* (): AsyncGenerator<Uint8Array> {
    for (;;) {
      const r = await reader.read();
      if (r.done) return;
      done += r.value.length;
      opts.onProgress?.({ done, total: pointer.esize });
      yield r.value;
    }
  };
  const secrets = { key: b64uDecode(pointer.key), digest: b64uDecode(pointer.dig), size: pointer.size, esize: pointer.esize };
  const provider = opts.provider ?? browserProvider();
  try {
    yield* decryptAttachment(body(), secrets, provider ? { provider } : {});
  } catch (err) {
    if (err instanceof CryptoError) throw new AttachmentVerificationError(err.code, err.message);
    throw err;
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}

/** Downloads, decrypts and verifies a whole attachment; the Blob exists only once the digest matched. */
export async function downloadAttachment(client: UmbraClient, pointer: AttachmentPointer, opts: DownloadAttachmentOptions = {}): Promise<Blob> {
  const chunks: Uint8Array<ArrayBuffer>[] = [];
  for await (const plain of attachmentPlaintext(client, pointer, opts)) chunks.push(plain as Uint8Array<ArrayBuffer>);
  return new Blob(chunks, { type: pointer.ct });
}

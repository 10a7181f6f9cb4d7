import { attachmentEsize, b64uEncode, randomBytes, type Content } from '@umbra/crypto';

/** An attachment pointer (PROTOCOL.md §9), sent inside an E2EE `Content{k:"att"}`. */
export interface AttachmentPointer {
  oid: string;
  key: string;
  dig: string;
  size: number;
  esize: number;
  ct: string;
  name?: string;
  /** Playing time in milliseconds (voice and video). */
  dur?: number;
}

export interface FileProgress {
  /** Bytes of the encrypted blob sent (upload) or received (download) so far. */
  done: number;
  total: number;
}

/** The E2EE message content that carries a pointer (forwarding re-sends the same pointer). */
export function attachmentContent(pointer: AttachmentPointer, extra: Partial<Content> = {}): Content {
  return { v: 1, id: b64uEncode(randomBytes(16)), ts: Date.now(), k: 'att', ...pointer, ...extra };
}

/** The pointer inside a received `att` content, or undefined when it is malformed. */
export function pointerOf(content: Content): AttachmentPointer | undefined {
  if (content.k !== 'att') return undefined;
  const c = content as Record<string, unknown>;
  const str = (v: unknown) => typeof v === 'string' && v.length > 0 && v.length < 4096;
  const int = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  if (!str(c.oid) || !str(c.key) || !str(c.dig) || !int(c.size) || !int(c.esize) || !str(c.ct)) return undefined;
  if (c.esize !== attachmentEsize(c.size as number)) return undefined;
  return {
    oid: c.oid as string,
    key: c.key as string,
    dig: c.dig as string,
    size: c.size as number,
    esize: c.esize as number,
    ct: c.ct as string,
    ...(str(c.name) ? { name: c.name as string } : {}),
    ...(int(c.dur) ? { dur: c.dur as number } : {}),
  };
}

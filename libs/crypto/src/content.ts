import { CryptoError } from './errors';

/** pad(x) = x ‖ 0x80 ‖ 0x00×z, the smallest z making the length a multiple of 256 (PROTOCOL.md §7). */
export function pad(x: Uint8Array): Uint8Array {
  const len = Math.ceil((x.length + 1) / 256) * 256;
  const out = new Uint8Array(len);
  out.set(x);
  out[x.length] = 0x80;
  return out;
}

export function unpad(p: Uint8Array): Uint8Array {
  if (p.length === 0 || p.length % 256 !== 0) throw new CryptoError('DECRYPT_FAILED', 'bad padding length');
  let i = p.length - 1;
  while (i >= 0 && p[i] === 0) i--;
  if (i < 0 || p[i] !== 0x80) throw new CryptoError('DECRYPT_FAILED', 'bad padding');
  return p.slice(0, i);
}

export const CONTENT_KINDS = ['text', 'att', 'react', 'edit', 'del', 'rcpt', 'typing', 'call', 'exp_set', 'grp', 'skdm', 'sync', 'retry'] as const;
export type ContentKind = (typeof CONTENT_KINDS)[number];

/** The plaintext inside the AEAD: UTF-8 I-JSON, extensible; unknown fields are ignored. */
export interface Content {
  v: 1;
  id: string;
  ts: number;
  k: ContentKind;
  text?: string;
  exp?: { t: number; m: 'send' | 'read' };
  gid?: string;
  [extra: string]: unknown;
}

const te = new TextEncoder();
const td = new TextDecoder('utf-8', { fatal: true });

export function encodeContent(c: Content): Uint8Array {
  return te.encode(JSON.stringify(c));
}

export function decodeContent(bytes: Uint8Array): Content {
  let value: unknown;
  try {
    value = JSON.parse(td.decode(bytes));
  } catch {
    throw new CryptoError('MALFORMED', 'content is not UTF-8 JSON');
  }
  const c = value as Partial<Content> | null;
  if (!c || typeof c !== 'object' || c.v !== 1 || typeof c.id !== 'string' || typeof c.ts !== 'number' || !CONTENT_KINDS.includes(c.k as ContentKind)) {
    throw new CryptoError('MALFORMED', 'content lacks v, id, ts or a known k');
  }
  return c as Content;
}

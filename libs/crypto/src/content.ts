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
  if (!Number.isSafeInteger(c.ts) || c.ts < 0) throw new CryptoError('MALFORMED', 'content ts is not a time in ms');
  if (c.exp !== undefined) {
    const e = c.exp as { t?: unknown; m?: unknown } | null;
    if (!e || typeof e !== 'object' || !Number.isInteger(e.t) || (e.t as number) < 1 || (e.t as number) > 0xffff_ffff || (e.m !== 'send' && e.m !== 'read')) {
      throw new CryptoError('MALFORMED', 'exp must be {t: 1..2^32-1 seconds, m: "send"|"read"}');
    }
  }
  if (c.gid !== undefined && typeof c.gid !== 'string') throw new CryptoError('MALFORMED', 'gid must be a string');
  return c as Content;
}

/** 30 days in ms: the read-mode upper bound of §7–8. */
export const READ_MODE_BOUND_MS = 2_592_000_000;

/**
 * The Envelope's `expires_at` (ms, 0 = none) and `read_ttl_s` (s, 0 = none) mirrored from the
 * message timer `exp{t, m}` (§7, §8): send mode `ts + 1000·t` and 0; read mode `ts + 1000·t + 30 d` and `t`.
 */
export function envelopeExpiry(c: { ts: number; exp?: { t: number; m: 'send' | 'read' } }): { expiresAt: number; readTtlS: number } {
  if (!Number.isSafeInteger(c.ts) || c.ts < 0) throw new CryptoError('MALFORMED', 'content ts');
  if (!c.exp) return { expiresAt: 0, readTtlS: 0 };
  const { t, m } = c.exp;
  if (!Number.isInteger(t) || t < 1 || t > 0xffff_ffff) throw new CryptoError('MALFORMED', 'exp.t must be an integer in [1, 2^32-1]');
  if (m === 'send') return { expiresAt: c.ts + 1000 * t, readTtlS: 0 };
  if (m === 'read') return { expiresAt: c.ts + 1000 * t + READ_MODE_BOUND_MS, readTtlS: t };
  throw new CryptoError('MALFORMED', 'exp.m must be "send" or "read"');
}

/** The lowered expiry after a read report at server time `readAt` (§7): min(expires_at, read_at + 1000·read_ttl_s), expires_at 0 = no bound. */
export function expiryAfterRead(expiresAt: number, readTtlS: number, readAt: number): number {
  if (readTtlS === 0) return expiresAt;
  const byRead = readAt + 1000 * readTtlS;
  return expiresAt === 0 ? byRead : Math.min(expiresAt, byRead);
}

import { CryptoError } from './errors';

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function u8(v: number): Uint8Array {
  return Uint8Array.of(v & 0xff);
}

export function u16(v: number): Uint8Array {
  return Uint8Array.of((v >>> 8) & 0xff, v & 0xff);
}

export function u32(v: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, v >>> 0);
  return out;
}

export function u64(v: number | bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(v));
  return out;
}

/** Sequential reader of a fixed binary layout; every shortfall is CryptoError('MALFORMED'). */
export class ByteReader {
  private offset = 0;

  private readonly bytes: Uint8Array;

  constructor(bytes: Uint8Array) {
    if (!(bytes instanceof Uint8Array)) throw new CryptoError('MALFORMED', 'not bytes');
    // A plain copy: Node Buffers may be views into a shared pool.
    this.bytes = new Uint8Array(bytes);
  }

  /** Bytes [from, to) of the input, as a fresh Uint8Array. */
  range(from: number, to: number): Uint8Array {
    return this.bytes.slice(from, to);
  }

  get remaining(): number {
    return this.bytes.length - this.offset;
  }

  get position(): number {
    return this.offset;
  }

  fixed(n: number): Uint8Array {
    if (this.remaining < n) throw new CryptoError('MALFORMED', 'truncated input');
    const out = this.bytes.slice(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  u8(): number {
    return this.fixed(1)[0]!;
  }

  u16(): number {
    const b = this.fixed(2);
    return (b[0]! << 8) | b[1]!;
  }

  u32(): number {
    const b = this.fixed(4);
    return new DataView(b.buffer, b.byteOffset, 4).getUint32(0);
  }

  u64(): bigint {
    const b = this.fixed(8);
    return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0);
  }

  /** A u64 that must fit a JS number (times, versions). */
  u64n(): number {
    const v = this.u64();
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new CryptoError('MALFORMED', 'u64 value above 2^53-1');
    return Number(v);
  }

  opaque(lenBytes: 1 | 2 | 4): Uint8Array {
    const n = lenBytes === 1 ? this.u8() : lenBytes === 2 ? this.u16() : this.u32();
    return this.fixed(n);
  }

  end(): void {
    if (this.remaining !== 0) throw new CryptoError('MALFORMED', 'trailing bytes');
  }
}

const B64U = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const B64U_INDEX = new Int16Array(128).fill(-1);
for (let i = 0; i < B64U.length; i++) B64U_INDEX[B64U.charCodeAt(i)] = i;

export function b64uEncode(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 3 <= bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += B64U[(n >>> 18) & 63]! + B64U[(n >>> 12) & 63]! + B64U[(n >>> 6) & 63]! + B64U[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += B64U[(n >>> 18) & 63]! + B64U[(n >>> 12) & 63]!;
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += B64U[(n >>> 18) & 63]! + B64U[(n >>> 12) & 63]! + B64U[(n >>> 6) & 63]!;
  }
  return out;
}

/** Strict base64url: no padding, no other characters, zero unused trailing bits. */
export function b64uDecode(s: string): Uint8Array {
  if (typeof s !== 'string' || s.length % 4 === 1) throw new CryptoError('MALFORMED', 'invalid base64url length');
  const out = new Uint8Array(Math.floor((s.length * 3) / 4));
  let o = 0;
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const v = c < 128 ? B64U_INDEX[c]! : -1;
    if (v < 0) throw new CryptoError('MALFORMED', 'invalid base64url character');
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >>> bits) & 0xff;
      acc &= (1 << bits) - 1;
    }
  }
  if (acc !== 0) throw new CryptoError('MALFORMED', 'non-canonical base64url (trailing bits)');
  return out;
}

/**
 * The decoded length of canonical unpadded base64url, or undefined when `s` is not that: the same
 * verdict as b64uDecode without decoding (the send path checks every envelope's encoding).
 */
export function b64uDecodedLength(s: string): number | undefined {
  if (typeof s !== 'string' || s.length % 4 === 1) return undefined;
  let last = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    last = c < 128 ? B64U_INDEX[c]! : -1;
    if (last < 0) return undefined;
  }
  // The last character's bits below the final whole byte must be zero (2 or 4 of them).
  const rem = s.length % 4;
  if ((rem === 2 && (last & 0x0f) !== 0) || (rem === 3 && (last & 0x03) !== 0)) return undefined;
  return Math.floor((s.length * 3) / 4);
}

export function hexEncode(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

export function hexDecode(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new CryptoError('MALFORMED', 'invalid hex');
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Constant-time for equal lengths. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

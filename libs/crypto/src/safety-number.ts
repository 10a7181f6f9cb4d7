import { sha512 } from '@noble/hashes/sha2.js';
import { b64uDecode, b64uEncode, bytesEqual, concatBytes, u16 } from './bytes';
import { accountIdOf } from './identity';
import { SUITE_V1 } from './primitives';

function fingerprint(aik: Uint8Array): Uint8Array {
  const key = concatBytes(u16(SUITE_V1), aik);
  let h = sha512(concatBytes(u16(1), key, accountIdOf(aik), key));
  for (let i = 1; i < 5200; i++) h = sha512(concatBytes(h, key));
  return h;
}

function digits(h: Uint8Array): string {
  let out = '';
  for (let i = 0; i < 6; i++) {
    let v = 0;
    for (let j = 0; j < 5; j++) v = v * 256 + h[5 * i + j]!;
    out += String(v % 100000).padStart(5, '0');
  }
  return out;
}

/** PROTOCOL.md §11: 60 digits (12 groups of 5) and the QR payload, from both account keys. */
export function safetyNumber(localAik: Uint8Array, remoteAik: Uint8Array): { digits: string; groups: string[]; qr: string } {
  const local = fingerprint(localAik);
  const remote = fingerprint(remoteAik);
  const [a, b] = [digits(local), digits(remote)].sort();
  const all = a! + b!;
  return {
    digits: all,
    groups: all.match(/.{5}/g)!,
    qr: `umbra-sn:1:${b64uEncode(concatBytes(u16(SUITE_V1), local.slice(0, 32), remote.slice(0, 32)))}`,
  };
}

/** True when a scanned QR (from the peer's device) matches ours with local and remote swapped. */
export function verifySafetyQr(ours: string, scanned: string): boolean {
  if (typeof ours !== 'string' || typeof scanned !== 'string' || !ours.startsWith('umbra-sn:1:') || !scanned.startsWith('umbra-sn:1:')) return false;
  let o: Uint8Array;
  let t: Uint8Array;
  try {
    o = b64uDecode(ours.slice('umbra-sn:1:'.length));
    t = b64uDecode(scanned.slice('umbra-sn:1:'.length));
  } catch {
    return false;
  }
  if (o.length !== 66 || t.length !== 66 || o[0] !== 0 || o[1] !== 1 || t[0] !== 0 || t[1] !== 1) return false;
  return bytesEqual(o.slice(2, 34), t.slice(34, 66)) && bytesEqual(o.slice(34, 66), t.slice(2, 34));
}

import { sha512 } from '@noble/hashes/sha2.js';
import { b64uEncode, bytesEqual, concatBytes, u16 } from './bytes';
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
  const decode = (s: string) => Uint8Array.from(atob(s.slice('umbra-sn:1:'.length).replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil((s.length - 11) / 4) * 4, '=')), (c) => c.charCodeAt(0));
  if (!ours.startsWith('umbra-sn:1:') || !scanned.startsWith('umbra-sn:1:')) return false;
  const o = decode(ours);
  const t = decode(scanned);
  if (o.length !== 66 || t.length !== 66) return false;
  return bytesEqual(o.slice(2, 34), t.slice(34, 66)) && bytesEqual(o.slice(34, 66), t.slice(2, 34));
}

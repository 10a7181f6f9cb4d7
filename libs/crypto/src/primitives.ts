import { schnorr, secp256k1 } from '@noble/curves/secp256k1.js';
import { hkdf as nobleHkdf } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { randomBytes as nobleRandomBytes } from '@noble/hashes/utils.js';
import { gcm } from '@noble/ciphers/aes.js';
import { concatBytes } from './bytes';
import { CryptoError } from './errors';

export const SUITE_V1 = 0x0001;

const N = secp256k1.Point.CURVE().n;

export function randomBytes(n: number): Uint8Array {
  return nobleRandomBytes(n);
}

export function sha256(m: Uint8Array): Uint8Array {
  return nobleSha256(m);
}

function toBigInt(b: Uint8Array): bigint {
  let v = 0n;
  for (const x of b) v = (v << 8n) | BigInt(x);
  return v;
}

/** A secret key is a 32-byte big-endian integer in [1, n−1]; other values are rejected, never reduced. */
export function isValidSecretKey(sk: Uint8Array): boolean {
  if (!(sk instanceof Uint8Array) || sk.length !== 32) return false;
  const v = toBigInt(sk);
  return v >= 1n && v < N;
}

function assertSecretKey(sk: Uint8Array): void {
  if (!isValidSecretKey(sk)) throw new CryptoError('BAD_KEY', 'secret key out of range');
}

export function generateSecretKey(): Uint8Array {
  for (;;) {
    const sk = randomBytes(32);
    if (isValidSecretKey(sk)) return sk;
  }
}

/** BIP340 x-only public key. */
export function pub(sk: Uint8Array): Uint8Array {
  assertSecretKey(sk);
  return schnorr.getPublicKey(sk);
}

/** x-coordinate of sk·lift_x(X); X must be 32 bytes and lift to a curve point. */
export function ecdh(sk: Uint8Array, X: Uint8Array): Uint8Array {
  assertSecretKey(sk);
  if (!(X instanceof Uint8Array) || X.length !== 32) throw new CryptoError('BAD_KEY', 'public key must be 32 bytes');
  try {
    return secp256k1.getSharedSecret(sk, concatBytes(Uint8Array.of(0x02), X)).subarray(1);
  } catch {
    throw new CryptoError('BAD_KEY', 'public key is not on the curve');
  }
}

/** True when X is a valid x-only key (lift_x succeeds). */
export function isValidPublicKey(X: Uint8Array): boolean {
  if (!(X instanceof Uint8Array) || X.length !== 32) return false;
  try {
    schnorr.utils.lift_x(toBigInt(X));
    return true;
  } catch {
    return false;
  }
}

const te = new TextEncoder();

/** BIP340 tagged hash: SHA256(SHA256(tag) ‖ SHA256(tag) ‖ m). */
export function taggedHash(tag: string, ...msgs: Uint8Array[]): Uint8Array {
  return schnorr.utils.taggedHash(tag, ...msgs);
}

export function ascii(s: string): Uint8Array {
  return te.encode(s);
}

/** Sign(sk, purpose, m) = BIP340.Sign(sk, TH("umbra/v1/sig/"+purpose, m), aux). */
export function sign(sk: Uint8Array, purpose: string, m: Uint8Array, aux: Uint8Array = randomBytes(32)): Uint8Array {
  assertSecretKey(sk);
  return schnorr.sign(taggedHash(`umbra/v1/sig/${purpose}`, m), sk, aux);
}

export function verify(pk: Uint8Array, purpose: string, m: Uint8Array, sig: Uint8Array): boolean {
  if (!(pk instanceof Uint8Array) || pk.length !== 32 || !(sig instanceof Uint8Array) || sig.length !== 64) return false;
  try {
    return schnorr.verify(sig, taggedHash(`umbra/v1/sig/${purpose}`, m), pk);
  } catch {
    return false;
  }
}

export function hkdf(args: { salt: Uint8Array; ikm: Uint8Array; info: Uint8Array; length: number }): Uint8Array {
  return nobleHkdf(nobleSha256, args.ikm, args.salt, args.info, args.length);
}

export function hmacSha256(key: Uint8Array, m: Uint8Array): Uint8Array {
  return hmac(nobleSha256, key, m);
}

export function aesGcmEncrypt(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, data: Uint8Array): Uint8Array {
  return gcm(key, nonce, ad).encrypt(data);
}

export function aesGcmDecrypt(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, data: Uint8Array): Uint8Array {
  try {
    return gcm(key, nonce, ad).decrypt(data);
  } catch {
    throw new CryptoError('DECRYPT_FAILED', 'authentication failed');
  }
}

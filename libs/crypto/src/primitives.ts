import { schnorr, secp256k1 } from '@noble/curves/secp256k1.js';
import { hkdf as nobleHkdf } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { randomBytes as nobleRandomBytes } from '@noble/hashes/utils.js';
import { gcm } from '@noble/ciphers/aes.js';
import { ml_kem1024 } from '@noble/post-quantum/ml-kem.js';
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
export function sign(sk: Uint8Array, purpose: string, m: Uint8Array, aux?: Uint8Array): Uint8Array {
  assertSecretKey(sk);
  if (aux !== undefined && (!(aux instanceof Uint8Array) || aux.length !== 32)) throw new CryptoError('MALFORMED', 'aux must be 32 bytes');
  return schnorr.sign(taggedHash(`umbra/v1/sig/${purpose}`, m), sk, aux ?? randomBytes(32));
}

export function verify(pk: Uint8Array, purpose: string, m: Uint8Array, sig: Uint8Array): boolean {
  if (!(pk instanceof Uint8Array) || pk.length !== 32 || !(sig instanceof Uint8Array) || sig.length !== 64) return false;
  try {
    return schnorr.verify(sig, taggedHash(`umbra/v1/sig/${purpose}`, m), pk);
  } catch {
    return false;
  }
}

/** RFC 5869 allows at most 255·HashLen = 8160 output bytes. */
export const HKDF_MAX_LENGTH = 255 * 32;

export function hkdf(args: { salt: Uint8Array; ikm: Uint8Array; info: Uint8Array; length: number }): Uint8Array {
  if (!Number.isInteger(args.length) || args.length < 1 || args.length > HKDF_MAX_LENGTH) throw new CryptoError('MALFORMED', `HKDF length must be 1–${HKDF_MAX_LENGTH}`);
  return nobleHkdf(nobleSha256, args.ikm, args.salt, args.info, args.length);
}

export function hmacSha256(key: Uint8Array, m: Uint8Array): Uint8Array {
  return hmac(nobleSha256, key, m);
}

/** Suite 0x0001's AEAD is AES-256-GCM with a 12-byte nonce; other key or nonce sizes are rejected. */
function checkAeadParams(key: Uint8Array, nonce: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== 32) throw new CryptoError('BAD_KEY', 'AES-256-GCM key must be 32 bytes');
  if (!(nonce instanceof Uint8Array) || nonce.length !== 12) throw new CryptoError('MALFORMED', 'AES-GCM nonce must be 12 bytes');
}

export function aesGcmEncrypt(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, data: Uint8Array): Uint8Array {
  checkAeadParams(key, nonce);
  return gcm(key, nonce, ad).encrypt(data);
}

export function aesGcmDecrypt(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, data: Uint8Array): Uint8Array {
  checkAeadParams(key, nonce);
  try {
    return gcm(key, nonce, ad).decrypt(data);
  } catch {
    throw new CryptoError('DECRYPT_FAILED', 'authentication failed');
  }
}

const KEM_SEED_LEN = 64;
const KEM_EK_LEN = 1568;
const KEM_DK_LEN = 3168;
const KEM_CT_LEN = 1568;

/** ML-KEM-1024.KeyGen_internal(d, z) from the 64-byte seed d ‖ z (§3). */
export function kemKeygen(seed: Uint8Array): { publicKey: Uint8Array; secretKey: Uint8Array } {
  if (!(seed instanceof Uint8Array) || seed.length !== KEM_SEED_LEN) throw new CryptoError('BAD_KEY', 'ML-KEM seed must be 64 bytes (d || z)');
  return ml_kem1024.keygen(seed);
}

/** ML-KEM-1024.Encaps with the FIPS 203 §7.2 check of `ek`; `m` (32 bytes) fixes the randomness for test vectors. */
export function kemEncapsulate(ek: Uint8Array, m?: Uint8Array): { cipherText: Uint8Array; sharedSecret: Uint8Array } {
  if (!(ek instanceof Uint8Array) || ek.length !== KEM_EK_LEN) throw new CryptoError('BAD_KEY', 'ML-KEM-1024 encapsulation key must be 1568 bytes');
  if (m !== undefined && (!(m instanceof Uint8Array) || m.length !== 32)) throw new CryptoError('MALFORMED', 'ML-KEM m must be 32 bytes');
  try {
    return ml_kem1024.encapsulate(ek, m);
  } catch {
    throw new CryptoError('BAD_KEY', 'ML-KEM encapsulation key fails the FIPS 203 input check');
  }
}

/** ML-KEM-1024.Decaps (implicit rejection); the private key is the 64-byte seed or the 3168-byte dk. */
export function kemDecapsulate(ct: Uint8Array, seedOrDk: Uint8Array): Uint8Array {
  if (!(ct instanceof Uint8Array) || ct.length !== KEM_CT_LEN) throw new CryptoError('MALFORMED', 'ML-KEM-1024 ciphertext must be 1568 bytes');
  if (!(seedOrDk instanceof Uint8Array) || (seedOrDk.length !== KEM_SEED_LEN && seedOrDk.length !== KEM_DK_LEN)) throw new CryptoError('BAD_KEY', 'ML-KEM-1024 private key must be a 64-byte seed or a 3168-byte dk');
  const dk = seedOrDk.length === KEM_SEED_LEN ? ml_kem1024.keygen(seedOrDk).secretKey : seedOrDk;
  try {
    return ml_kem1024.decapsulate(ct, dk);
  } catch {
    throw new CryptoError('BAD_KEY', 'ML-KEM-1024 private key fails the FIPS 203 input check');
  }
}

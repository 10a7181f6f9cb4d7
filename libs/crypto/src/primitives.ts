import { schnorr, secp256k1 } from '@noble/curves/secp256k1.js';
import { hkdf as nobleHkdf } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { randomBytes as nobleRandomBytes } from '@noble/hashes/utils.js';
import { gcm } from '@noble/ciphers/aes.js';
import { ml_kem1024 } from '@noble/post-quantum/ml-kem.js';
import type * as NodeCrypto from 'node:crypto';
import type * as TinySecp256k1 from 'tiny-secp256k1';
import { bytesEqual, concatBytes } from './bytes';
import { CryptoError } from './errors';
import { nativeSecp256k1Provider, type Secp256k1Addon } from './secp256k1-native';
import { wasmSecp256k1Provider } from './secp256k1-wasm';

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

// ---------------------------------------------------------------------------------------------
// secp256k1 behind one small interface, like the attachment AEAD: libsecp256k1 in Node (the native
// addon, else WebAssembly), @noble everywhere else and as the fallback. Every provider computes the
// same bytes; the wrappers below do the input checks (key ranges, lengths) so a provider only sees
// well-formed input.

/** The curve operations the protocol uses. Inputs are already checked: sk in [1, n−1], 32-byte X/msg/aux, 64-byte sig. */
export interface Secp256k1Provider {
  readonly name: string;
  /** BIP340 x-only public key of sk. */
  pub(sk: Uint8Array): Uint8Array;
  /** x(sk·lift_x(X)); throws when X does not lift to a curve point (including x ≥ p). */
  ecdh(sk: Uint8Array, X: Uint8Array): Uint8Array;
  isValidPublicKey(X: Uint8Array): boolean;
  /** BIP340.Sign over a 32-byte message with 32-byte aux randomness. */
  signSchnorr(msg32: Uint8Array, sk: Uint8Array, aux: Uint8Array): Uint8Array;
  /** BIP340.Verify; false (never a throw) for any invalid input. */
  verifySchnorr(sig: Uint8Array, msg32: Uint8Array, pk: Uint8Array): boolean;
}

/** Pure JavaScript (@noble/curves): the browser path and the fallback. */
export const nobleSecp256k1Provider: Secp256k1Provider = {
  name: 'noble',
  pub: (sk) => schnorr.getPublicKey(sk),
  ecdh: (sk, X) => secp256k1.getSharedSecret(sk, concatBytes(Uint8Array.of(0x02), X)).subarray(1),
  isValidPublicKey(X) {
    try {
      schnorr.utils.lift_x(toBigInt(X));
      return true;
    } catch {
      return false;
    }
  },
  signSchnorr: (msg32, sk, aux) => schnorr.sign(msg32, sk, aux),
  verifySchnorr(sig, msg32, pk) {
    try {
      return schnorr.verify(sig, msg32, pk);
    } catch {
      return false;
    }
  },
};

let nobleAnswers: { sig: Uint8Array; shared: Uint8Array } | undefined;

/**
 * BIP340 vector 1 and an ECDH against it: a provider that disagrees with @noble on them is not used.
 * Costs one @noble sign and ECDH (~8 ms) the first time a Node process checks a provider.
 */
function agreesWithNoble(p: Secp256k1Provider): boolean {
  const hex = (h: string) => Uint8Array.from(h.match(/../g)!.map((b) => parseInt(b, 16)));
  const sk = hex('b7e151628aed2a6abf7158809cf4f3c762e7160f38b4da56a784d9045190cfef');
  const msg = hex('243f6a8885a308d313198a2e03707344a4093822299f31d0082efa98ec4e6c89');
  const aux = hex('0000000000000000000000000000000000000000000000000000000000000001');
  const X = hex('dff1d77f2a671c5f36183726db2341be58feae1da2deced843240f7b502ba659');
  nobleAnswers ??= { sig: nobleSecp256k1Provider.signSchnorr(msg, sk, aux), shared: nobleSecp256k1Provider.ecdh(sk, X) };
  try {
    const sig = p.signSchnorr(msg, sk, aux);
    return bytesEqual(p.pub(sk), X) && bytesEqual(sig, nobleAnswers.sig) && p.verifySchnorr(sig, msg, X) && bytesEqual(p.ecdh(sk, X), nobleAnswers.shared);
  } catch {
    return false;
  }
}

type NodeProcess = { env?: Record<string, string | undefined>; cwd?: () => string; getBuiltinModule?: (id: string) => unknown };

/** Node's `require`, reached without a static import so the browser bundle never sees the packages it loads. */
function nodeRequire(): ((id: string) => unknown) | undefined {
  const proc = (globalThis as { process?: NodeProcess }).process;
  if (!proc?.getBuiltinModule) return undefined;
  const mod = proc.getBuiltinModule('node:module') as { createRequire(from: string): (id: string) => unknown } | undefined;
  // createRequire wants a file path (it resolves from that file's folder); ESM contexts have no __filename.
  const from = typeof __filename === 'string' ? __filename : `${proc.cwd?.() ?? '.'}/index.js`;
  return mod?.createRequire(from);
}

function checked(load: () => Secp256k1Provider): Secp256k1Provider | undefined {
  try {
    const p = load();
    return agreesWithNoble(p) ? p : undefined;
  } catch {
    return undefined;
  }
}

/** libsecp256k1 compiled to WebAssembly (tiny-secp256k1), in Node; undefined elsewhere or when it fails the check. */
export function loadWasmSecp256k1Provider(): Secp256k1Provider | undefined {
  const req = nodeRequire();
  return req && checked(() => wasmSecp256k1Provider(req('tiny-secp256k1') as typeof TinySecp256k1, nobleSecp256k1Provider));
}

/**
 * libsecp256k1 as a native addon (`secp256k1/bindings`: the prebuilt N-API binary only, never the
 * package's pure-JS `elliptic` fallback), with BIP340 from the WebAssembly provider (@noble when that
 * is missing); undefined outside Node, when the binary does not load, or when it fails the check.
 */
export function loadAddonSecp256k1Provider(): Secp256k1Provider | undefined {
  const req = nodeRequire();
  if (!req) return undefined;
  const schnorr = loadWasmSecp256k1Provider() ?? nobleSecp256k1Provider;
  return checked(() => nativeSecp256k1Provider(req('secp256k1/bindings') as Secp256k1Addon, schnorr, randomBytes(32)));
}

export const SECP256K1_PROVIDER_CHOICES = ['native', 'wasm', 'noble'] as const;

/**
 * Node's secp256k1 provider: the native addon, else WebAssembly; undefined outside Node or when
 * neither loads and passes the known-answer check against @noble. UMBRA_SECP256K1=native|wasm
 * allows that one only, UMBRA_SECP256K1=noble none (the @noble fallback).
 */
export function loadNativeSecp256k1Provider(): Secp256k1Provider | undefined {
  const choice = (globalThis as { process?: NodeProcess }).process?.env?.UMBRA_SECP256K1;
  if (choice === 'noble') return undefined;
  if (choice === 'wasm') return loadWasmSecp256k1Provider();
  if (choice === 'native') return loadAddonSecp256k1Provider();
  return loadAddonSecp256k1Provider() ?? loadWasmSecp256k1Provider();
}

let curveProvider: Secp256k1Provider | undefined;

/**
 * The provider in use: set by useSecp256k1Provider, else the best Node provider, else @noble.
 * Throws when UMBRA_SECP256K1 names a provider that did not load (or is not one of native|wasm|noble).
 */
export function secp256k1Provider(): Secp256k1Provider {
  if (curveProvider) return curveProvider;
  const choice = (globalThis as { process?: NodeProcess }).process?.env?.UMBRA_SECP256K1;
  if (choice !== undefined && choice !== '' && !(SECP256K1_PROVIDER_CHOICES as readonly string[]).includes(choice)) {
    throw new Error(`UMBRA_SECP256K1 must be one of ${SECP256K1_PROVIDER_CHOICES.join('|')}, not "${choice}"`);
  }
  const p = loadNativeSecp256k1Provider();
  if (!p && (choice === 'native' || choice === 'wasm')) throw new Error(`UMBRA_SECP256K1=${choice}: that secp256k1 provider did not load or failed its known-answer check`);
  return (curveProvider = p ?? nobleSecp256k1Provider);
}

/** Pins a provider (tests, benchmarks); undefined goes back to the default choice. */
export function useSecp256k1Provider(p: Secp256k1Provider | undefined): void {
  curveProvider = p;
}

/** BIP340 x-only public key. */
export function pub(sk: Uint8Array): Uint8Array {
  assertSecretKey(sk);
  return secp256k1Provider().pub(sk);
}

/** x-coordinate of sk·lift_x(X); X must be 32 bytes and lift to a curve point. */
export function ecdh(sk: Uint8Array, X: Uint8Array): Uint8Array {
  assertSecretKey(sk);
  if (!(X instanceof Uint8Array) || X.length !== 32) throw new CryptoError('BAD_KEY', 'public key must be 32 bytes');
  const provider = secp256k1Provider();
  try {
    return provider.ecdh(sk, X);
  } catch {
    throw new CryptoError('BAD_KEY', 'public key is not on the curve');
  }
}

/** True when X is a valid x-only key (lift_x succeeds). */
export function isValidPublicKey(X: Uint8Array): boolean {
  if (!(X instanceof Uint8Array) || X.length !== 32) return false;
  return secp256k1Provider().isValidPublicKey(X);
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
  return secp256k1Provider().signSchnorr(taggedHash(`umbra/v1/sig/${purpose}`, m), sk, aux ?? randomBytes(32));
}

export function verify(pk: Uint8Array, purpose: string, m: Uint8Array, sig: Uint8Array): boolean {
  if (!(pk instanceof Uint8Array) || pk.length !== 32 || !(sig instanceof Uint8Array) || sig.length !== 64) return false;
  return secp256k1Provider().verifySchnorr(sig, taggedHash(`umbra/v1/sig/${purpose}`, m), pk);
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

// ML-KEM-1024: node:crypto (OpenSSL 3.5, Node 24) when present, @noble otherwise. Both implement FIPS 203:
// the same keys from the same seed, the same shared secret (implicit rejection included) for a ciphertext.

/** The ML-KEM operations on the session hot path; inputs have their lengths checked. */
export interface MlKemProvider {
  readonly name: string;
  /** Encaps with fresh randomness; throws when `ek` fails the FIPS 203 §7.2 check. */
  encapsulate(ek: Uint8Array): { cipherText: Uint8Array; sharedSecret: Uint8Array };
  /** Decaps under the key pair derived from the 64-byte seed d ‖ z. */
  decapsulateFromSeed(ct: Uint8Array, seed: Uint8Array): Uint8Array;
}

export const nobleMlKemProvider: MlKemProvider = {
  name: 'noble',
  encapsulate: (ek) => ml_kem1024.encapsulate(ek),
  decapsulateFromSeed: (ct, seed) => ml_kem1024.decapsulate(ct, ml_kem1024.keygen(seed).secretKey),
};

/** node:crypto's ML-KEM-1024 (Node ≥ 24.7 on OpenSSL ≥ 3.5), found without importing node:crypto. */
export function loadNativeMlKemProvider(): MlKemProvider | undefined {
  const proc = (globalThis as { process?: { env?: Record<string, string | undefined>; getBuiltinModule?: (id: string) => unknown } }).process;
  if (!proc?.getBuiltinModule || proc.env?.UMBRA_NATIVE_KEM === '0') return undefined;
  const nc = proc.getBuiltinModule('node:crypto') as typeof NodeCrypto | undefined;
  type Kem = { encapsulate?: (k: NodeCrypto.KeyObject) => { sharedKey: Uint8Array; ciphertext: Uint8Array }; decapsulate?: (k: NodeCrypto.KeyObject, ct: Uint8Array) => Uint8Array };
  const kem = nc as (typeof NodeCrypto & Kem) | undefined;
  if (!kem?.encapsulate || !kem.decapsulate) return undefined;
  const { encapsulate, decapsulate } = kem;
  const type = 'ml-kem-1024';
  const p: MlKemProvider = {
    name: 'node:crypto',
    encapsulate(ek) {
      const r = encapsulate(kem.createPublicKey({ key: ek, format: 'raw-public', asymmetricKeyType: type } as unknown as NodeCrypto.PublicKeyInput));
      return { cipherText: new Uint8Array(r.ciphertext), sharedSecret: new Uint8Array(r.sharedKey) };
    },
    decapsulateFromSeed: (ct, seed) => new Uint8Array(decapsulate(kem.createPrivateKey({ key: seed, format: 'raw-seed', asymmetricKeyType: type } as unknown as NodeCrypto.PrivateKeyInput), ct)),
  };
  try {
    // Known-answer check against @noble: same public key from a seed, and both directions agree.
    const seed = new Uint8Array(64).map((_, i) => i);
    const kp = ml_kem1024.keygen(seed);
    const n = ml_kem1024.encapsulate(kp.publicKey, new Uint8Array(32).fill(7));
    const mine = p.encapsulate(kp.publicKey);
    const ok = bytesEqual(p.decapsulateFromSeed(n.cipherText, seed), n.sharedSecret) && bytesEqual(ml_kem1024.decapsulate(mine.cipherText, kp.secretKey), mine.sharedSecret);
    return ok ? p : undefined;
  } catch {
    return undefined;
  }
}

let kemProvider: MlKemProvider | undefined;

/** The ML-KEM provider in use: set by useMlKemProvider, else node:crypto in Node ≥ 24.7, else @noble. */
export function mlKemProvider(): MlKemProvider {
  return (kemProvider ??= loadNativeMlKemProvider() ?? nobleMlKemProvider);
}

/** Pins an ML-KEM provider (tests, benchmarks); undefined goes back to the default choice. */
export function useMlKemProvider(p: MlKemProvider | undefined): void {
  kemProvider = p;
}

/** ML-KEM-1024.Encaps with the FIPS 203 §7.2 check of `ek`; `m` (32 bytes) fixes the randomness for test vectors (then always @noble). */
export function kemEncapsulate(ek: Uint8Array, m?: Uint8Array): { cipherText: Uint8Array; sharedSecret: Uint8Array } {
  if (!(ek instanceof Uint8Array) || ek.length !== KEM_EK_LEN) throw new CryptoError('BAD_KEY', 'ML-KEM-1024 encapsulation key must be 1568 bytes');
  if (m !== undefined && (!(m instanceof Uint8Array) || m.length !== 32)) throw new CryptoError('MALFORMED', 'ML-KEM m must be 32 bytes');
  try {
    return m !== undefined ? ml_kem1024.encapsulate(ek, m) : mlKemProvider().encapsulate(ek);
  } catch {
    throw new CryptoError('BAD_KEY', 'ML-KEM encapsulation key fails the FIPS 203 input check');
  }
}

/** ML-KEM-1024.Decaps (implicit rejection); the private key is the 64-byte seed or the 3168-byte dk. */
export function kemDecapsulate(ct: Uint8Array, seedOrDk: Uint8Array): Uint8Array {
  if (!(ct instanceof Uint8Array) || ct.length !== KEM_CT_LEN) throw new CryptoError('MALFORMED', 'ML-KEM-1024 ciphertext must be 1568 bytes');
  if (!(seedOrDk instanceof Uint8Array) || (seedOrDk.length !== KEM_SEED_LEN && seedOrDk.length !== KEM_DK_LEN)) throw new CryptoError('BAD_KEY', 'ML-KEM-1024 private key must be a 64-byte seed or a 3168-byte dk');
  try {
    return seedOrDk.length === KEM_SEED_LEN ? mlKemProvider().decapsulateFromSeed(ct, seedOrDk) : ml_kem1024.decapsulate(ct, seedOrDk);
  } catch {
    throw new CryptoError('BAD_KEY', 'ML-KEM-1024 private key fails the FIPS 203 input check');
  }
}

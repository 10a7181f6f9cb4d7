import { ctr as aesCtr, gcm } from '@noble/ciphers/aes.js';
import { expand, extract } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { bytesEqual, concatBytes, u16, u64 } from './bytes';
import { CryptoError } from './errors';
import { ecdh, hkdf } from './primitives';

// SFrame, RFC 9605: per-frame media encryption under keys that intermediaries (SFUs, TURN) never hold.

/** Cipher suite identifiers from the RFC 9605 §8.1 registry. */
export const SFRAME_AES_128_CTR_HMAC_SHA256_80 = 0x0001;
export const SFRAME_AES_128_CTR_HMAC_SHA256_64 = 0x0002;
export const SFRAME_AES_128_CTR_HMAC_SHA256_32 = 0x0003;
export const SFRAME_AES_128_GCM_SHA256_128 = 0x0004;
/** The suite Umbra's calls use (§10). */
export const SFRAME_AES_256_GCM_SHA512_128 = 0x0005;

export type SframeCipherSuite = 0x0001 | 0x0002 | 0x0003 | 0x0004 | 0x0005;

interface SuiteParams {
  readonly hash: typeof sha256 | typeof sha512;
  readonly nk: number;
  /** AES key length inside the CTR+HMAC compound key; undefined for AES-GCM. */
  readonly nka: number | undefined;
  readonly nt: number;
}

const NN = 12;
const SUITES: Readonly<Record<SframeCipherSuite, SuiteParams>> = {
  0x0001: { hash: sha256, nk: 48, nka: 16, nt: 10 },
  0x0002: { hash: sha256, nk: 48, nka: 16, nt: 8 },
  0x0003: { hash: sha256, nk: 48, nka: 16, nt: 4 },
  0x0004: { hash: sha256, nk: 16, nka: undefined, nt: 16 },
  0x0005: { hash: sha512, nk: 32, nka: undefined, nt: 16 },
};

function suiteParams(suite: number): SuiteParams {
  const p = (SUITES as Record<number, SuiteParams | undefined>)[suite];
  if (!p) throw new CryptoError('UNSUPPORTED_SUITE', `unknown SFrame cipher suite ${suite}`);
  return p;
}

export const SFRAME_MAX_VALUE = (1n << 64n) - 1n;

/** KID and CTR are u64; a number must be a safe integer. */
function toU64(v: number | bigint, what: string): bigint {
  if (typeof v === 'number' && !Number.isSafeInteger(v)) throw new CryptoError('MALFORMED', `${what} must be an integer`);
  const b = BigInt(v);
  if (b < 0n || b > SFRAME_MAX_VALUE) throw new CryptoError('MALFORMED', `${what} out of u64 range`);
  return b;
}

function minimalBytes(v: bigint): Uint8Array {
  const out: number[] = [];
  for (let x = v; x > 0n; x >>= 8n) out.unshift(Number(x & 0xffn));
  return Uint8Array.from(out);
}

function readBigEndian(b: Uint8Array): bigint {
  let v = 0n;
  for (const x of b) v = (v << 8n) | BigInt(x);
  return v;
}

/** The §4.3 header: values 0–7 inside the config byte, larger ones in the fewest big-endian bytes. */
export function encodeSframeHeader(kid: number | bigint, ctr: number | bigint): Uint8Array {
  const k = toU64(kid, 'KID');
  const c = toU64(ctr, 'CTR');
  const kBytes = k < 8n ? new Uint8Array(0) : minimalBytes(k);
  const cBytes = c < 8n ? new Uint8Array(0) : minimalBytes(c);
  const kField = k < 8n ? Number(k) : 0x8 | (kBytes.length - 1);
  const cField = c < 8n ? Number(c) : 0x8 | (cBytes.length - 1);
  return concatBytes(Uint8Array.of((kField << 4) | cField), kBytes, cBytes);
}

export interface SframeHeader {
  kid: bigint;
  ctr: bigint;
  /** The header's encoded length; the AEAD ciphertext follows it. */
  length: number;
}

/** Parses the header at the start of `bytes`; non-minimal encodings are MALFORMED, as the RFC forbids them. */
export function decodeSframeHeader(bytes: Uint8Array): SframeHeader {
  if (!(bytes instanceof Uint8Array) || bytes.length < 1) throw new CryptoError('MALFORMED', 'SFrame header missing');
  const config = bytes[0]!;
  let offset = 1;
  const field = (nibble: number, what: string): bigint => {
    if ((nibble & 0x8) === 0) return BigInt(nibble);
    const len = (nibble & 0x7) + 1;
    if (bytes.length < offset + len) throw new CryptoError('MALFORMED', `SFrame header truncated in ${what}`);
    const raw = bytes.subarray(offset, offset + len);
    offset += len;
    const v = readBigEndian(raw);
    if (raw[0] === 0 || v < 8n) throw new CryptoError('MALFORMED', `SFrame ${what} not minimally encoded`);
    return v;
  };
  const kid = field(config >> 4, 'KID');
  const ctr = field(config & 0x0f, 'CTR');
  return { kid, ctr, length: offset };
}

export interface SframeKeyMaterial {
  /** HKDF-Extract("", base_key), exposed for the RFC's vectors. */
  secret: Uint8Array;
  key: Uint8Array;
  salt: Uint8Array;
}

const encoder = new TextEncoder();

/** §4.4.2's HKDF-Expand labels: the KID as a u64 (not the header's compact form), then the suite as a u16. */
export function sframeLabels(suite: SframeCipherSuite, kid: number | bigint): { keyLabel: Uint8Array; saltLabel: Uint8Array } {
  const tail = concatBytes(u64(toU64(kid, 'KID')), u16(suite));
  return {
    keyLabel: concatBytes(encoder.encode('SFrame 1.0 Secret key '), tail),
    saltLabel: concatBytes(encoder.encode('SFrame 1.0 Secret salt '), tail),
  };
}

/** §4.4.2 derive_key_salt, with the suite's hash. */
export function deriveSframeKeyMaterial(suite: SframeCipherSuite, kid: number | bigint, baseKey: Uint8Array): SframeKeyMaterial {
  const p = suiteParams(suite);
  if (!(baseKey instanceof Uint8Array) || baseKey.length === 0) throw new CryptoError('BAD_KEY', 'SFrame base_key must be non-empty bytes');
  const { keyLabel, saltLabel } = sframeLabels(suite, kid);
  const secret = extract(p.hash, baseKey, new Uint8Array(0));
  return { secret, key: expand(p.hash, secret, keyLabel, p.nk), salt: expand(p.hash, secret, saltLabel, NN) };
}

/** nonce = sframe_salt XOR CTR, CTR as a big-endian integer of the nonce's length. */
export function sframeNonce(salt: Uint8Array, ctr: number | bigint): Uint8Array {
  if (!(salt instanceof Uint8Array) || salt.length !== NN) throw new CryptoError('BAD_KEY', `SFrame salt must be ${NN} bytes`);
  const c = concatBytes(new Uint8Array(NN - 8), u64(toU64(ctr, 'CTR')));
  return salt.map((b, i) => b ^ c[i]!);
}

function ctrHmacTag(p: SuiteParams, authKey: Uint8Array, nonce: Uint8Array, aad: Uint8Array, ct: Uint8Array): Uint8Array {
  const authData = concatBytes(u64(aad.length), u64(ct.length), u64(p.nt), nonce, aad, ct);
  return hmac(p.hash, authKey, authData).subarray(0, p.nt);
}

function checkAead(p: SuiteParams, key: Uint8Array, nonce: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== p.nk) throw new CryptoError('BAD_KEY', `SFrame key must be ${p.nk} bytes`);
  if (!(nonce instanceof Uint8Array) || nonce.length !== NN) throw new CryptoError('MALFORMED', `SFrame nonce must be ${NN} bytes`);
}

/** The suite's AEAD.Encrypt (AES-GCM, or §4.5.1's AES-CTR then truncated HMAC); returns ct ‖ tag. */
export function sframeAeadEncrypt(suite: SframeCipherSuite, key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, pt: Uint8Array): Uint8Array {
  const p = suiteParams(suite);
  checkAead(p, key, nonce);
  if (p.nka === undefined) return gcm(key, nonce, aad).encrypt(pt);
  const ct = aesCtr(key.subarray(0, p.nka), concatBytes(nonce, new Uint8Array(4))).encrypt(pt);
  return concatBytes(ct, ctrHmacTag(p, key.subarray(p.nka), nonce, aad, ct));
}

export function sframeAeadDecrypt(suite: SframeCipherSuite, key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, ct: Uint8Array): Uint8Array {
  const p = suiteParams(suite);
  checkAead(p, key, nonce);
  if (!(ct instanceof Uint8Array) || ct.length < p.nt) throw new CryptoError('DECRYPT_FAILED', 'SFrame ciphertext shorter than its tag');
  if (p.nka === undefined) {
    try {
      return gcm(key, nonce, aad).decrypt(ct);
    } catch {
      throw new CryptoError('DECRYPT_FAILED', 'SFrame authentication failed');
    }
  }
  const inner = ct.subarray(0, ct.length - p.nt);
  if (!bytesEqual(ct.subarray(ct.length - p.nt), ctrHmacTag(p, key.subarray(p.nka), nonce, aad, inner))) {
    throw new CryptoError('DECRYPT_FAILED', 'SFrame authentication failed');
  }
  return aesCtr(key.subarray(0, p.nka), concatBytes(nonce, new Uint8Array(4))).decrypt(inner);
}

/** One frame under already-derived key material: header ‖ AEAD(key, salt ⊕ CTR, header ‖ metadata, plaintext). */
export function sframeEncryptFrame(
  suite: SframeCipherSuite,
  keys: Pick<SframeKeyMaterial, 'key' | 'salt'>,
  kid: number | bigint,
  ctr: number | bigint,
  plaintext: Uint8Array,
  metadata: Uint8Array = new Uint8Array(0),
): Uint8Array {
  const header = encodeSframeHeader(kid, ctr);
  const ct = sframeAeadEncrypt(suite, keys.key, sframeNonce(keys.salt, ctr), concatBytes(header, metadata), plaintext);
  return concatBytes(header, ct);
}

/** Decrypts a frame whose header has been parsed with decodeSframeHeader. */
export function sframeDecryptFrame(
  suite: SframeCipherSuite,
  keys: Pick<SframeKeyMaterial, 'key' | 'salt'>,
  frame: Uint8Array,
  header: SframeHeader,
  metadata: Uint8Array = new Uint8Array(0),
): Uint8Array {
  const aad = concatBytes(frame.subarray(0, header.length), metadata);
  return sframeAeadDecrypt(suite, keys.key, sframeNonce(keys.salt, header.ctr), aad, frame.subarray(header.length));
}

/** The §10 call keys: k_c protects caller → callee media, k_r callee → caller. */
export interface CallMediaKeys {
  kC: Uint8Array;
  kR: Uint8Array;
}

/**
 * §10: o = HKDF(salt = u64 call_id, ikm = ECDH(e, E_peer), info = "umbra/v1/call" ‖ Addr(caller) ‖ Addr(callee), L = 64).
 * `ownEphemeralSk` is e_c on the caller and e_r on the callee; both sides get the same pair.
 */
export function sframeKeysForCall(args: {
  callId: bigint;
  ownEphemeralSk: Uint8Array;
  peerEphemeralPk: Uint8Array;
  callerAddr: Uint8Array;
  calleeAddr: Uint8Array;
}): CallMediaKeys {
  const o = hkdf({
    salt: u64(toU64(args.callId, 'call_id')),
    ikm: ecdh(args.ownEphemeralSk, args.peerEphemeralPk),
    info: concatBytes(encoder.encode('umbra/v1/call'), args.callerAddr, args.calleeAddr),
    length: 64,
  });
  return { kC: o.slice(0, 32), kR: o.slice(32, 64) };
}

/** RFC 3711 §3.3.2-style sliding window over CTR values, per receive KID. */
class ReplayWindow {
  private highest: bigint | undefined;

  /** Bit i set: CTR highest − i has been accepted. */
  private seen = 0n;

  constructor(private readonly size: bigint) {}

  check(ctr: bigint): void {
    if (this.highest === undefined || ctr > this.highest) return;
    const age = this.highest - ctr;
    if (age >= this.size) throw new CryptoError('REPLAY', `SFrame CTR ${ctr} is older than the replay window`);
    if ((this.seen >> age) & 1n) throw new CryptoError('REPLAY', `SFrame CTR ${ctr} already received`);
  }

  /** Only after the frame authenticated, so forged frames cannot move the window. */
  accept(ctr: bigint): void {
    const mask = (1n << this.size) - 1n;
    if (this.highest === undefined || ctr > this.highest) {
      const shift = this.highest === undefined ? this.size : ctr - this.highest;
      this.seen = shift >= this.size ? 1n : ((this.seen << shift) | 1n) & mask;
      this.highest = ctr;
    } else {
      this.seen |= 1n << (this.highest - ctr);
    }
  }
}

interface SendKey {
  keys: SframeKeyMaterial;
  next: bigint;
}

interface ReceiveKey {
  keys: SframeKeyMaterial;
  window: ReplayWindow;
}

export interface SframeContextOptions {
  suite?: SframeCipherSuite;
  /** How many CTR values behind the highest received one are still accepted (once each). */
  replayWindow?: number;
}

export const SFRAME_DEFAULT_REPLAY_WINDOW = 128;

/**
 * Keys by KID, each for sending or for receiving, never both (§4.4.1). Sending uses a monotonic CTR per
 * KID and refuses to wrap; receiving rejects a CTR it already accepted or one older than the window.
 */
export class SframeContext {
  readonly suite: SframeCipherSuite;

  private readonly windowSize: bigint;

  private readonly send = new Map<bigint, SendKey>();

  private readonly receive = new Map<bigint, ReceiveKey>();

  constructor(options: SframeContextOptions = {}) {
    this.suite = options.suite ?? SFRAME_AES_256_GCM_SHA512_128;
    suiteParams(this.suite);
    const w = options.replayWindow ?? SFRAME_DEFAULT_REPLAY_WINDOW;
    if (!Number.isSafeInteger(w) || w < 1 || w > 65536) throw new CryptoError('MALFORMED', 'replay window must be 1–65536');
    this.windowSize = BigInt(w);
  }

  /** `nextCtr` resumes a persisted sender; store nextCounter(kid) before each use to never reuse a nonce (§9.1). */
  addSendKey(kid: number | bigint, baseKey: Uint8Array, nextCtr: number | bigint = 0n): void {
    const k = this.freshKid(kid);
    this.send.set(k, { keys: deriveSframeKeyMaterial(this.suite, k, baseKey), next: toU64(nextCtr, 'CTR') });
  }

  addReceiveKey(kid: number | bigint, baseKey: Uint8Array): void {
    const k = this.freshKid(kid);
    this.receive.set(k, { keys: deriveSframeKeyMaterial(this.suite, k, baseKey), window: new ReplayWindow(this.windowSize) });
  }

  removeKey(kid: number | bigint): void {
    const k = toU64(kid, 'KID');
    this.send.delete(k);
    this.receive.delete(k);
  }

  hasReceiveKey(kid: number | bigint): boolean {
    return this.receive.has(toU64(kid, 'KID'));
  }

  /** The CTR the next encrypt under `kid` will use; above 2⁶⁴ − 1 once exhausted. */
  nextCounter(kid: number | bigint): bigint {
    return this.sendKey(kid).next;
  }

  encrypt(kid: number | bigint, plaintext: Uint8Array, metadata?: Uint8Array): Uint8Array {
    const k = toU64(kid, 'KID');
    const s = this.sendKey(k);
    const ctr = s.next;
    if (ctr > SFRAME_MAX_VALUE) throw new CryptoError('BAD_KEY', `SFrame CTR exhausted for KID ${k}; a new key is needed`);
    s.next = ctr + 1n;
    return sframeEncryptFrame(this.suite, s.keys, k, ctr, plaintext, metadata);
  }

  /**
   * BAD_KEY when no receive key has the frame's KID (the caller may hold the frame until it arrives, §4.4.4);
   * REPLAY for a CTR already accepted or behind the window; DECRYPT_FAILED for any tampering.
   */
  decrypt(frame: Uint8Array, metadata?: Uint8Array): { kid: bigint; ctr: bigint; plaintext: Uint8Array } {
    const header = decodeSframeHeader(frame);
    const r = this.receive.get(header.kid);
    if (!r) throw new CryptoError('BAD_KEY', `no SFrame receive key for KID ${header.kid}`);
    r.window.check(header.ctr);
    const plaintext = sframeDecryptFrame(this.suite, r.keys, frame, header, metadata);
    r.window.accept(header.ctr);
    return { kid: header.kid, ctr: header.ctr, plaintext };
  }

  private freshKid(kid: number | bigint): bigint {
    const k = toU64(kid, 'KID');
    if (this.send.has(k) || this.receive.has(k)) throw new CryptoError('BAD_KEY', `SFrame KID ${k} already has a key`);
    return k;
  }

  private sendKey(kid: number | bigint): SendKey {
    const s = this.send.get(toU64(kid, 'KID'));
    if (!s) throw new CryptoError('BAD_KEY', `no SFrame send key for KID ${kid}`);
    return s;
  }
}

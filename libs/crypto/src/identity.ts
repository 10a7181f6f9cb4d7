import { bech32m } from '@scure/base';
import { ByteReader, bytesEqual, concatBytes, u16, u32, u64, u8 } from './bytes';
import { CryptoError } from './errors';
import { SUITE_V1, ascii, sign, taggedHash, verify } from './primitives';

export const DEVICE_FLAG_AIK_HOLDER = 0x0000_0001;
export const DEVICE_FLAG_HEADER_ENCRYPTION = 0x0000_0002;
export const DEVICE_FLAG_SEALED_SENDER = 0x0000_0004;

export const DEVICE_CERT_TBS_BYTES = 83;
export const DEVICE_CERT_BYTES = 211;
const ACCOUNT_HRP = 'um';

function checkSuite(suite: number): void {
  if (suite !== SUITE_V1) throw new CryptoError('UNSUPPORTED_SUITE', `suite ${suite} is not supported`);
}

function checkVersion(v: number): void {
  if (v !== 1) throw new CryptoError('UNSUPPORTED_VERSION', `structure version ${v} is not supported`);
}

function fixed32(x: Uint8Array, what: string): void {
  if (!(x instanceof Uint8Array) || x.length !== 32) throw new CryptoError('MALFORMED', `${what} must be 32 bytes`);
}

/** account_id(AIK) = TH("umbra/v1/account-id", u16 suite ‖ AIK). */
export function accountIdOf(aik: Uint8Array, suite: number = SUITE_V1): Uint8Array {
  fixed32(aik, 'AIK');
  return taggedHash('umbra/v1/account-id', concatBytes(u16(suite), aik));
}

/** bech32m with HRP "um": 61 lower-case characters "um1…". */
export function encodeAccountId(id: Uint8Array): string {
  fixed32(id, 'account id');
  return bech32m.encode(ACCOUNT_HRP, bech32m.toWords(id));
}

export function decodeAccountId(s: string): Uint8Array {
  if (typeof s !== 'string' || s.length !== 61 || s !== s.toLowerCase()) throw new CryptoError('MALFORMED', 'not an account id');
  let decoded: { prefix: string; words: number[] };
  try {
    decoded = bech32m.decode(s as `${string}1${string}`, 90);
  } catch {
    throw new CryptoError('MALFORMED', 'not an account id (bech32m checksum)');
  }
  if (decoded.prefix !== ACCOUNT_HRP || decoded.words.length !== 52) throw new CryptoError('MALFORMED', 'not an account id');
  try {
    const bytes = bech32m.fromWords(decoded.words);
    if (bytes.length !== 32) throw new Error('length');
    return bytes;
  } catch {
    throw new CryptoError('MALFORMED', 'not an account id (padding)');
  }
}

export interface DeviceCertTbs {
  suite: number;
  aik: Uint8Array;
  deviceId: number;
  dik: Uint8Array;
  createdAt: number;
  flags: number;
}

export interface DeviceCertificate extends DeviceCertTbs {
  aikSig: Uint8Array;
  popSig: Uint8Array;
  tbsBytes: Uint8Array;
  bytes: Uint8Array;
}

export function encodeDeviceCertTbs(t: DeviceCertTbs): Uint8Array {
  fixed32(t.aik, 'AIK');
  fixed32(t.dik, 'DIK');
  return concatBytes(u8(1), u16(t.suite), t.aik, u32(t.deviceId), t.dik, u64(t.createdAt), u32(t.flags));
}

/** `aux` (BIP340 auxiliary randomness) is fresh per signature unless given (test vectors use 0x00×32). */
export function createDeviceCertificate(tbs: DeviceCertTbs, aikSk: Uint8Array, dikSk: Uint8Array, aux?: Uint8Array): Uint8Array {
  if (tbs.deviceId === 0) throw new CryptoError('MALFORMED', 'device_id must be non-zero');
  const t = encodeDeviceCertTbs(tbs);
  return concatBytes(t, sign(aikSk, 'device-cert', t, aux), sign(dikSk, 'device-pop', t, aux));
}

function readDeviceCertificate(r: ByteReader): DeviceCertificate {
  const start = r.position;
  checkVersion(r.u8());
  const suite = r.u16();
  checkSuite(suite);
  const aik = r.fixed(32);
  const deviceId = r.u32();
  const dik = r.fixed(32);
  const createdAt = r.u64n();
  const flags = r.u32();
  const aikSig = r.fixed(64);
  const popSig = r.fixed(64);
  if (deviceId === 0) throw new CryptoError('MALFORMED', 'device_id 0');
  const tbs = { suite, aik, deviceId, dik, createdAt, flags };
  const tbsBytes = encodeDeviceCertTbs(tbs);
  const bytes = concatBytes(tbsBytes, aikSig, popSig);
  if (r.position - start !== DEVICE_CERT_BYTES) throw new CryptoError('MALFORMED', 'bad certificate length');
  return { ...tbs, aikSig, popSig, tbsBytes, bytes };
}

export function parseDeviceCertificate(bytes: Uint8Array): DeviceCertificate {
  const r = new ByteReader(bytes);
  const cert = readDeviceCertificate(r);
  r.end();
  return cert;
}

/** Both signatures: aik_sig under the certificate's AIK, pop_sig under its DIK. */
export function verifyDeviceCertificate(cert: DeviceCertificate): void {
  if (!verify(cert.aik, 'device-cert', cert.tbsBytes, cert.aikSig)) throw new CryptoError('BAD_SIGNATURE', 'device certificate: bad account signature');
  if (!verify(cert.dik, 'device-pop', cert.tbsBytes, cert.popSig)) throw new CryptoError('BAD_SIGNATURE', 'device certificate: bad proof of possession');
}

export interface SignedDeviceList {
  suite: number;
  aik: Uint8Array;
  accountId: Uint8Array;
  listVersion: number;
  issuedAt: number;
  devices: DeviceCertificate[];
  signature: Uint8Array;
  tbsBytes: Uint8Array;
  bytes: Uint8Array;
}

export function createSignedDeviceList(input: { aik: Uint8Array; listVersion: number; issuedAt: number; certificates: Uint8Array[] }, aikSk: Uint8Array, aux?: Uint8Array): Uint8Array {
  fixed32(input.aik, 'AIK');
  const tbs = concatBytes(u8(1), u16(SUITE_V1), input.aik, u64(input.listVersion), u64(input.issuedAt), u16(input.certificates.length), ...input.certificates);
  return concatBytes(tbs, sign(aikSk, 'device-list', tbs, aux));
}

export function parseSignedDeviceList(bytes: Uint8Array): SignedDeviceList {
  if (!(bytes instanceof Uint8Array)) throw new CryptoError('MALFORMED', 'not bytes');
  const r = new ByteReader(bytes);
  checkVersion(r.u8());
  const suite = r.u16();
  checkSuite(suite);
  const aik = r.fixed(32);
  const listVersion = r.u64n();
  const issuedAt = r.u64n();
  const count = r.u16();
  const devices: DeviceCertificate[] = [];
  for (let i = 0; i < count; i++) devices.push(readDeviceCertificate(r));
  const tbsBytes = r.range(0, r.position);
  const signature = r.fixed(64);
  r.end();
  return { suite, aik, accountId: accountIdOf(aik, suite), listVersion, issuedAt, devices, signature, tbsBytes, bytes: r.range(0, r.position) };
}

/** Parses and checks everything §1 asks that needs no caller state (KT and rollback are separate). */
export function verifySignedDeviceList(bytes: Uint8Array): SignedDeviceList {
  const list = parseSignedDeviceList(bytes);
  if (list.devices.length === 0) throw new CryptoError('MALFORMED', 'a device list needs at least one device');
  const diks = new Set<string>();
  let prev = 0;
  for (const d of list.devices) {
    if (d.deviceId <= prev) throw new CryptoError('MALFORMED', 'device ids must be ascending and unique');
    prev = d.deviceId;
    if (d.suite !== list.suite || !bytesEqual(d.aik, list.aik)) throw new CryptoError('MALFORMED', 'certificate of another account or suite');
    const k = Array.from(d.dik).join(',');
    if (diks.has(k)) throw new CryptoError('MALFORMED', 'duplicate device identity key');
    diks.add(k);
  }
  if (!verify(list.aik, 'device-list', list.tbsBytes, list.signature)) throw new CryptoError('BAD_SIGNATURE', 'device list signature');
  for (const d of list.devices) verifyDeviceCertificate(d);
  return list;
}

/** Rollback and equivocation rules against the highest cached list. */
export function checkDeviceListUpdate(cached: SignedDeviceList | undefined, next: SignedDeviceList): void {
  if (!cached) return;
  if (next.listVersion < cached.listVersion) throw new CryptoError('ROLLBACK', 'device list older than the cached one');
  if (next.listVersion === cached.listVersion && !bytesEqual(next.bytes, cached.bytes)) {
    throw new CryptoError('EQUIVOCATION', 'two different device lists with the same version');
  }
}

const HANDLE_RE = /^[a-z0-9_]{3,32}$/;

/** NFKC, then ASCII A–Z to a–z only; the result must match ^[a-z0-9_]{3,32}$. */
export function canonicalHandle(input: string): string {
  if (typeof input !== 'string') throw new CryptoError('INVALID_HANDLE', 'not a string');
  const h = input.normalize('NFKC').replace(/[A-Z]/g, (c) => c.toLowerCase());
  if (!HANDLE_RE.test(h)) throw new CryptoError('INVALID_HANDLE', 'handles are 3–32 of [a-z0-9_]');
  return h;
}

export interface SignedHandleClaim {
  handle: string;
  accountId: Uint8Array;
  claimVersion: number;
  issuedAt: number;
  signature: Uint8Array;
  tbsBytes: Uint8Array;
  bytes: Uint8Array;
}

export function createSignedHandleClaim(input: { handle: string; accountId: Uint8Array; claimVersion: number; issuedAt: number }, aikSk: Uint8Array, aux?: Uint8Array): Uint8Array {
  const handle = ascii(canonicalHandle(input.handle));
  fixed32(input.accountId, 'account id');
  const tbs = concatBytes(u8(1), u16(SUITE_V1), u8(handle.length), handle, input.accountId, u64(input.claimVersion), u64(input.issuedAt));
  return concatBytes(tbs, sign(aikSk, 'handle-claim', tbs, aux));
}

export function parseSignedHandleClaim(bytes: Uint8Array): SignedHandleClaim {
  const r = new ByteReader(bytes);
  checkVersion(r.u8());
  checkSuite(r.u16());
  const raw = r.opaque(1);
  const accountId = r.fixed(32);
  const claimVersion = r.u64n();
  const issuedAt = r.u64n();
  const tbsBytes = r.range(0, r.position);
  const signature = r.fixed(64);
  r.end();
  let handle = '';
  for (const b of raw) {
    if (b > 0x7f) throw new CryptoError('INVALID_HANDLE', 'handle is not ASCII');
    handle += String.fromCharCode(b);
  }
  return { handle, accountId, claimVersion, issuedAt, signature, tbsBytes, bytes: r.range(0, r.position) };
}

/** Parses, requires an already-canonical handle, and checks the signature under `aik`. */
export function verifySignedHandleClaim(bytes: Uint8Array, aik: Uint8Array): SignedHandleClaim {
  const claim = parseSignedHandleClaim(bytes);
  let canonical: string;
  try {
    canonical = canonicalHandle(claim.handle);
  } catch {
    throw new CryptoError('INVALID_HANDLE', 'handle is not valid');
  }
  if (canonical !== claim.handle) throw new CryptoError('INVALID_HANDLE', 'handle is not canonical');
  if (!verify(aik, 'handle-claim', claim.tbsBytes, claim.signature)) throw new CryptoError('BAD_SIGNATURE', 'handle claim signature');
  return claim;
}

export interface AuthResponse {
  origin: string;
  accountId: Uint8Array;
  deviceId: number;
  nonce: Uint8Array;
  clientTime: number;
  signature: Uint8Array;
  tbsBytes: Uint8Array;
}

export function createAuthResponse(input: { origin: string; accountId: Uint8Array; deviceId: number; nonce: Uint8Array; clientTime: number }, dikSk: Uint8Array, aux?: Uint8Array): Uint8Array {
  const origin = ascii(input.origin);
  if (origin.length < 1 || origin.length > 255) throw new CryptoError('MALFORMED', 'origin must be 1–255 bytes');
  fixed32(input.accountId, 'account id');
  fixed32(input.nonce, 'nonce');
  const tbs = concatBytes(u8(1), u16(SUITE_V1), u8(origin.length), origin, input.accountId, u32(input.deviceId), input.nonce, u64(input.clientTime));
  return concatBytes(tbs, sign(dikSk, 'auth', tbs, aux));
}

export function parseAuthResponse(bytes: Uint8Array): AuthResponse {
  const r = new ByteReader(bytes);
  checkVersion(r.u8());
  checkSuite(r.u16());
  const rawOrigin = r.opaque(1);
  if (rawOrigin.length === 0) throw new CryptoError('MALFORMED', 'empty origin');
  let origin = '';
  for (const b of rawOrigin) {
    if (b < 0x21 || b > 0x7e) throw new CryptoError('MALFORMED', 'origin is not printable ASCII');
    origin += String.fromCharCode(b);
  }
  const accountId = r.fixed(32);
  const deviceId = r.u32();
  const nonce = r.fixed(32);
  const clientTime = r.u64n();
  const tbsBytes = r.range(0, r.position);
  const signature = r.fixed(64);
  r.end();
  return { origin, accountId, deviceId, nonce, clientTime, signature, tbsBytes };
}

export function verifyAuthResponse(resp: AuthResponse, dik: Uint8Array): boolean {
  return verify(dik, 'auth', resp.tbsBytes, resp.signature);
}

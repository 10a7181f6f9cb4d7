import { ByteReader, concatBytes, u16, u32, u64, u8 } from './bytes';
import { CryptoError } from './errors';
import { DEVICE_CERT_BYTES, parseDeviceCertificate, type DeviceCertificate } from './identity';
import { SUITE_V1, sign, verify, isValidPublicKey } from './primitives';

/** PROTOCOL.md §2 prekey kinds. */
export const PREKEY_KIND = { SPK: 1, OPK: 2, PQOPK: 3, PQLR: 4 } as const;
export type PreKeyKind = (typeof PREKEY_KIND)[keyof typeof PREKEY_KIND];

export const PREKEY_RECORD_BYTES = 148;
export const KEM_PUBLIC_KEY_BYTES = 1568;
export const KEM_PREKEY_RECORD_BYTES = 1684;

export interface PreKeyFields {
  accountId: Uint8Array;
  deviceId: number;
  kind: PreKeyKind;
  keyId: number;
  /** 32-byte x-only key (SPK, OPK) or 1568-byte ML-KEM-1024 encapsulation key (PQOPK, PQLR). */
  publicKey: Uint8Array;
  createdAt: number;
}

export interface PreKeyRecord extends PreKeyFields {
  signature: Uint8Array;
  tbsBytes: Uint8Array;
  bytes: Uint8Array;
}

function isKem(kind: number): boolean {
  return kind === PREKEY_KIND.PQOPK || kind === PREKEY_KIND.PQLR;
}

function encodeTbs(f: PreKeyFields): Uint8Array {
  const want = isKem(f.kind) ? KEM_PUBLIC_KEY_BYTES : 32;
  if (f.publicKey.length !== want) throw new CryptoError('MALFORMED', `public key must be ${want} bytes for kind ${f.kind}`);
  if (f.accountId.length !== 32) throw new CryptoError('MALFORMED', 'account id must be 32 bytes');
  return concatBytes(u8(1), u16(SUITE_V1), f.accountId, u32(f.deviceId), u8(f.kind), u32(f.keyId), f.publicKey, u64(f.createdAt));
}

/** Signs a PreKeyRecord (kinds 1, 2) or KemPreKeyRecord (kinds 3, 4) with the device key. */
export function createPreKeyRecord(fields: PreKeyFields, dikSk: Uint8Array, aux?: Uint8Array): Uint8Array {
  const tbs = encodeTbs(fields);
  return concatBytes(tbs, sign(dikSk, isKem(fields.kind) ? 'kem-prekey' : 'prekey', tbs, aux));
}

function readRecord(r: ByteReader, kem: boolean): PreKeyRecord {
  const start = r.position;
  if (r.u8() !== 1) throw new CryptoError('UNSUPPORTED_VERSION', 'prekey record version');
  if (r.u16() !== SUITE_V1) throw new CryptoError('UNSUPPORTED_SUITE', 'prekey record suite');
  const accountId = r.fixed(32);
  const deviceId = r.u32();
  const kind = r.u8();
  if (kem ? !isKem(kind) : kind !== PREKEY_KIND.SPK && kind !== PREKEY_KIND.OPK) throw new CryptoError('MALFORMED', `unexpected prekey kind ${kind}`);
  const keyId = r.u32();
  const publicKey = r.fixed(kem ? KEM_PUBLIC_KEY_BYTES : 32);
  const createdAt = r.u64n();
  const tbsBytes = r.range(start, r.position);
  const signature = r.fixed(64);
  return { accountId, deviceId, kind: kind as PreKeyKind, keyId, publicKey, createdAt, signature, tbsBytes, bytes: r.range(start, r.position) };
}

/** Parses a PreKeyRecord or a KemPreKeyRecord, told apart by length. */
export function parsePreKeyRecord(bytes: Uint8Array): PreKeyRecord {
  const r = new ByteReader(bytes);
  const record = readRecord(r, bytes.length === KEM_PREKEY_RECORD_BYTES);
  r.end();
  return record;
}

/** The signature under the device's DIK; for EC prekeys also that PK lifts to the curve. */
export function verifyPreKeyRecord(record: PreKeyRecord, dik: Uint8Array): void {
  if (!verify(dik, isKem(record.kind) ? 'kem-prekey' : 'prekey', record.tbsBytes, record.signature)) throw new CryptoError('BAD_SIGNATURE', 'prekey signature');
  if (!isKem(record.kind) && !isValidPublicKey(record.publicKey)) throw new CryptoError('BAD_KEY', 'prekey is not a curve point');
}

export interface PreKeyBundle {
  certificate: DeviceCertificate;
  signedPreKey: PreKeyRecord;
  oneTimePreKey?: PreKeyRecord;
  kemPreKey: PreKeyRecord;
}

export function encodePreKeyBundle(parts: { certificate: Uint8Array; signedPreKey: Uint8Array; oneTimePreKey?: Uint8Array; kemPreKey: Uint8Array }): Uint8Array {
  return concatBytes(parts.certificate, parts.signedPreKey, u8(parts.oneTimePreKey ? 1 : 0), parts.oneTimePreKey ?? new Uint8Array(0), parts.kemPreKey);
}

export function parsePreKeyBundle(bytes: Uint8Array): PreKeyBundle {
  const r = new ByteReader(bytes);
  const certificate = parseDeviceCertificate(r.fixed(DEVICE_CERT_BYTES));
  const signedPreKey = readRecord(r, false);
  const hasOpk = r.u8();
  if (hasOpk > 1) throw new CryptoError('MALFORMED', 'has_opk must be 0 or 1');
  const oneTimePreKey = hasOpk ? readRecord(r, false) : undefined;
  const kemPreKey = readRecord(r, true);
  r.end();
  return { certificate, signedPreKey, ...(oneTimePreKey ? { oneTimePreKey } : {}), kemPreKey };
}

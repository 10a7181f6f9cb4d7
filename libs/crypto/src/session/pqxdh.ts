import { ByteReader, bytesEqual, concatBytes, u16, u32, u8 } from '../bytes';
import { CryptoError } from '../errors';
import { DEVICE_CERT_BYTES, DEVICE_FLAG_HEADER_ENCRYPTION, accountIdOf, parseDeviceCertificate, verifyDeviceCertificate, type DeviceCertificate } from '../identity';
import { PREKEY_KIND, verifyPreKeyRecord, type PreKeyBundle } from '../prekeys';
import { SUITE_V1, ascii, ecdh, generateSecretKey, hkdf, kemDecapsulate, kemEncapsulate, pub, sha256 } from '../primitives';

export const KEM_CIPHERTEXT_BYTES = 1568;

/** Addr(acct, dev, DIK) = account_id[32] ‖ u32 device_id ‖ DIK[32]. */
export function addr(cert: { aik: Uint8Array; deviceId: number; dik: Uint8Array }): Uint8Array {
  return concatBytes(accountIdOf(cert.aik), u32(cert.deviceId), cert.dik);
}

export interface PreKeyMessageFields {
  senderCert: Uint8Array;
  spkId: number;
  opkId?: number;
  ek: Uint8Array;
  pqKind: number;
  pqKeyId: number;
  ct: Uint8Array;
}

export function encodePreKeyMessage(f: PreKeyMessageFields, ratchetMessage: Uint8Array): Uint8Array {
  return concatBytes(
    u8(1), f.senderCert, u32(f.spkId), u8(f.opkId === undefined ? 0 : 1), f.opkId === undefined ? new Uint8Array(0) : u32(f.opkId),
    f.ek, u8(f.pqKind), u32(f.pqKeyId), f.ct, u32(ratchetMessage.length), ratchetMessage,
  );
}

export function parsePreKeyMessage(bytes: Uint8Array): PreKeyMessageFields & { cert: DeviceCertificate; ratchetMessage: Uint8Array } {
  const r = new ByteReader(bytes);
  if (r.u8() !== 1) throw new CryptoError('UNSUPPORTED_VERSION', 'PreKeyMessage version');
  const senderCert = r.fixed(DEVICE_CERT_BYTES);
  const cert = parseDeviceCertificate(senderCert);
  const spkId = r.u32();
  const hasOpk = r.u8();
  if (hasOpk > 1) throw new CryptoError('MALFORMED', 'has_opk must be 0 or 1');
  const opkId = hasOpk ? r.u32() : undefined;
  const ek = r.fixed(32);
  const pqKind = r.u8();
  if (pqKind !== PREKEY_KIND.PQOPK && pqKind !== PREKEY_KIND.PQLR) throw new CryptoError('MALFORMED', 'pq_kind must be 3 or 4');
  const pqKeyId = r.u32();
  const ct = r.fixed(KEM_CIPHERTEXT_BYTES);
  const ratchetMessage = r.opaque(4);
  r.end();
  return { senderCert, cert, spkId, ...(opkId === undefined ? {} : { opkId }), ek, pqKind, pqKeyId, ct, ratchetMessage };
}

function info(a: Uint8Array, b: Uint8Array, spk: Uint8Array, spkId: number, ek: Uint8Array, opk: { pk: Uint8Array; id: number } | undefined, pqKind: number, pqKeyId: number, pqpk: Uint8Array, ct: Uint8Array): Uint8Array {
  return concatBytes(
    ascii('umbra/v1/pqxdh'), u16(SUITE_V1), a, b, spk, u32(spkId), ek,
    opk ? concatBytes(u8(1), opk.pk, u32(opk.id)) : u8(0),
    u8(pqKind), u32(pqKeyId), sha256(pqpk), sha256(ct),
  );
}

const F = new Uint8Array(32).fill(0xff);

export interface SharedSecrets {
  rk0: Uint8Array;
  hkA: Uint8Array;
  hkB: Uint8Array;
}

function derive(ikmParts: Uint8Array[], infoBytes: Uint8Array): SharedSecrets {
  const okm = hkdf({ salt: new Uint8Array(32), ikm: concatBytes(F, ...ikmParts), info: infoBytes, length: 96 });
  return { rk0: okm.slice(0, 32), hkA: okm.slice(32, 64), hkB: okm.slice(64, 96) };
}

/** Checks a bundle as the initiator must (§2): certificate, kinds, owner, signatures, key validity, SPK age. */
export function verifyBundle(bundle: PreKeyBundle, now: number): void {
  const c = bundle.certificate;
  verifyDeviceCertificate(c);
  const owner = accountIdOf(c.aik);
  const check = (rec: PreKeyBundle['signedPreKey'], kinds: number[]) => {
    if (!kinds.includes(rec.kind) || !bytesEqual(rec.accountId, owner) || rec.deviceId !== c.deviceId) throw new CryptoError('MALFORMED', 'bundle record of the wrong kind or device');
    verifyPreKeyRecord(rec, c.dik);
  };
  check(bundle.signedPreKey, [PREKEY_KIND.SPK]);
  if (bundle.oneTimePreKey) check(bundle.oneTimePreKey, [PREKEY_KIND.OPK]);
  check(bundle.kemPreKey, [PREKEY_KIND.PQOPK, PREKEY_KIND.PQLR]);
  const age = now - bundle.signedPreKey.createdAt;
  if (age > 35 * 86_400_000 || -age > 86_400_000) throw new CryptoError('BAD_KEY', 'signed prekey too old or from the future');
}

export interface InitiatorResult extends SharedSecrets {
  fields: PreKeyMessageFields;
  spk: Uint8Array;
  headerEncryption: boolean;
  baseKey: Uint8Array;
}

/** A's side of PQXDH (§3). `ekSk`/`kemM` fix the randomness for test vectors. */
export function pqxdhInitiate(
  self: { cert: DeviceCertificate; dikSk: Uint8Array },
  bundle: PreKeyBundle,
  rand: { ekSk?: Uint8Array; kemM?: Uint8Array } = {},
): InitiatorResult {
  const ekSk = rand.ekSk ?? generateSecretKey();
  const ek = pub(ekSk);
  const b = bundle.certificate;
  const spk = bundle.signedPreKey.publicKey;
  const dh = [ecdh(self.dikSk, spk), ecdh(ekSk, b.dik), ecdh(ekSk, spk)];
  const opk = bundle.oneTimePreKey ? { pk: bundle.oneTimePreKey.publicKey, id: bundle.oneTimePreKey.keyId } : undefined;
  if (opk) dh.push(ecdh(ekSk, opk.pk));
  const enc = kemEncapsulate(bundle.kemPreKey.publicKey, rand.kemM);
  const secrets = derive(
    [...dh, enc.sharedSecret],
    info(addr(self.cert), addr(b), spk, bundle.signedPreKey.keyId, ek, opk, bundle.kemPreKey.kind, bundle.kemPreKey.keyId, bundle.kemPreKey.publicKey, enc.cipherText),
  );
  return {
    ...secrets,
    spk,
    baseKey: ek,
    headerEncryption: (self.cert.flags & DEVICE_FLAG_HEADER_ENCRYPTION) !== 0 && (b.flags & DEVICE_FLAG_HEADER_ENCRYPTION) !== 0,
    fields: { senderCert: self.cert.bytes, spkId: bundle.signedPreKey.keyId, ...(opk ? { opkId: opk.id } : {}), ek, pqKind: bundle.kemPreKey.kind, pqKeyId: bundle.kemPreKey.keyId, ct: enc.cipherText },
  };
}

/** B's side: the caller looked up its own prekeys by the ids in the message. */
export function pqxdhRespond(
  self: { cert: DeviceCertificate; dikSk: Uint8Array },
  msg: PreKeyMessageFields & { cert: DeviceCertificate },
  keys: { spkSk: Uint8Array; opkSk?: Uint8Array; kemSeedOrSk: Uint8Array; kemPk: Uint8Array },
): SharedSecrets & { headerEncryption: boolean } {
  verifyDeviceCertificate(msg.cert);
  if ((msg.opkId === undefined) !== (keys.opkSk === undefined)) throw new CryptoError('DECRYPT_FAILED', 'one-time prekey missing');
  const spk = pub(keys.spkSk);
  const dh = [ecdh(keys.spkSk, msg.cert.dik), ecdh(self.dikSk, msg.ek), ecdh(keys.spkSk, msg.ek)];
  let opk: { pk: Uint8Array; id: number } | undefined;
  if (keys.opkSk && msg.opkId !== undefined) {
    dh.push(ecdh(keys.opkSk, msg.ek));
    opk = { pk: pub(keys.opkSk), id: msg.opkId };
  }
  const ss = kemDecapsulate(msg.ct, keys.kemSeedOrSk);
  const secrets = derive(
    [...dh, ss],
    info(addr(msg.cert), addr(self.cert), spk, msg.spkId, msg.ek, opk, msg.pqKind, msg.pqKeyId, keys.kemPk, msg.ct),
  );
  return { ...secrets, headerEncryption: (self.cert.flags & DEVICE_FLAG_HEADER_ENCRYPTION) !== 0 && (msg.cert.flags & DEVICE_FLAG_HEADER_ENCRYPTION) !== 0 };
}

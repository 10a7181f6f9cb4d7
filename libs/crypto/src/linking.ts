import { ByteReader, b64uDecode, b64uEncode, bytesEqual, concatBytes, u16, u32, u8 } from './bytes';
import { CryptoError } from './errors';
import { DEVICE_CERT_TBS_BYTES, DEVICE_FLAG_AIK_HOLDER, encodeDeviceCertTbs, type DeviceCertTbs } from './identity';
import { SUITE_V1, aesGcmDecrypt, aesGcmEncrypt, ascii, ecdh, generateSecretKey, hkdf, isValidPublicKey, pub, sign, verify } from './primitives';

const QR_PREFIX = 'umbra-link:1:';

export interface LinkQr {
  eph: Uint8Array;
  dik: Uint8Array;
  deviceId: number;
}

/** What the new device keeps while it waits to be linked (never leaves it). */
export interface PendingLink extends LinkQr {
  ephSk: Uint8Array;
  dikSk: Uint8Array;
}

/** `rand` fixes the two key pairs (test vectors only). */
export function createPendingLink(deviceId: number, rand: { ephSk?: Uint8Array; dikSk?: Uint8Array } = {}): { pending: PendingLink; qr: string } {
  if (deviceId === 0) throw new CryptoError('MALFORMED', 'device_id must be non-zero');
  const ephSk = rand.ephSk ?? generateSecretKey();
  const dikSk = rand.dikSk ?? generateSecretKey();
  const pending = { ephSk, dikSk, eph: pub(ephSk), dik: pub(dikSk), deviceId };
  return { pending, qr: QR_PREFIX + b64uEncode(concatBytes(pending.eph, pending.dik, u32(deviceId))) };
}

export function parseLinkQr(qr: string): LinkQr {
  if (typeof qr !== 'string' || !qr.startsWith(QR_PREFIX)) throw new CryptoError('MALFORMED', 'not a LinkQR');
  const r = new ByteReader(b64uDecode(qr.slice(QR_PREFIX.length)));
  const eph = r.fixed(32);
  const dik = r.fixed(32);
  const deviceId = r.u32();
  r.end();
  if (!isValidPublicKey(eph) || !isValidPublicKey(dik)) throw new CryptoError('BAD_KEY', 'LinkQR key is not on the curve');
  if (deviceId === 0) throw new CryptoError('MALFORMED', 'device_id 0');
  return { eph, dik, deviceId };
}

function provisionKey(s: Uint8Array, e: Uint8Array, qr: LinkQr): { key: Uint8Array; nonce: Uint8Array } {
  const o = hkdf({ salt: new Uint8Array(32), ikm: s, info: concatBytes(ascii('umbra/v1/provision'), u16(SUITE_V1), e, qr.eph, qr.dik, u32(qr.deviceId)), length: 44 });
  return { key: o.slice(0, 32), nonce: o.slice(32, 44) };
}

/** The AIK holder's answer to a LinkQR: N's certificate TBS and aik_sig, encrypted to EPH_N. */
export function createProvisioningMessage(
  qr: LinkQr,
  holder: { aik: Uint8Array; aikSk: Uint8Array },
  opts: { flags?: number; createdAt: number; shareAikSk?: boolean; state?: Uint8Array; /** test vectors only */ eSk?: Uint8Array; /** test vectors only */ aux?: Uint8Array },
): { message: Uint8Array; tbs: DeviceCertTbs } {
  const flags = (opts.flags ?? 0) | (opts.shareAikSk ? DEVICE_FLAG_AIK_HOLDER : 0);
  const tbs: DeviceCertTbs = { suite: SUITE_V1, aik: holder.aik, deviceId: qr.deviceId, dik: qr.dik, createdAt: opts.createdAt, flags };
  const tbsBytes = encodeDeviceCertTbs(tbs);
  const state = opts.state ?? new TextEncoder().encode('{}');
  const payload = concatBytes(tbsBytes, sign(holder.aikSk, 'device-cert', tbsBytes, opts.aux), u8(opts.shareAikSk ? 1 : 0), opts.shareAikSk ? holder.aikSk : new Uint8Array(0), u32(state.length), state);
  const eSk = opts.eSk ?? generateSecretKey();
  const e = pub(eSk);
  const { key, nonce } = provisionKey(ecdh(eSk, qr.eph), e, qr);
  const ct = aesGcmEncrypt(key, nonce, new Uint8Array(0), payload);
  return { message: concatBytes(u8(1), e, u32(ct.length), ct), tbs };
}

/** N opens the ProvisioningMessage and checks it before signing pop_sig (§1 "Linking"). */
export function openProvisioningMessage(message: Uint8Array, pending: PendingLink): { tbs: DeviceCertTbs; tbsBytes: Uint8Array; aikSig: Uint8Array; aikSk?: Uint8Array; state: Uint8Array } {
  const r = new ByteReader(message);
  if (r.u8() !== 1) throw new CryptoError('UNSUPPORTED_VERSION', 'ProvisioningMessage version');
  const e = r.fixed(32);
  const ct = r.opaque(4);
  r.end();
  const { key, nonce } = provisionKey(ecdh(pending.ephSk, e), e, pending);
  const p = new ByteReader(aesGcmDecrypt(key, nonce, new Uint8Array(0), ct));
  const tbsBytes = p.fixed(DEVICE_CERT_TBS_BYTES);
  const aikSig = p.fixed(64);
  const hasAikSk = p.u8();
  if (hasAikSk > 1) throw new CryptoError('MALFORMED', 'has_aik_sk must be 0 or 1');
  const aikSk = hasAikSk ? p.fixed(32) : undefined;
  const state = p.opaque(4);
  p.end();
  const t = new ByteReader(tbsBytes);
  if (t.u8() !== 1) throw new CryptoError('UNSUPPORTED_VERSION', 'provisioned certificate version');
  const tbs: DeviceCertTbs = { suite: t.u16(), aik: t.fixed(32), deviceId: t.u32(), dik: t.fixed(32), createdAt: t.u64n(), flags: t.u32() };
  if (tbs.suite !== SUITE_V1) throw new CryptoError('UNSUPPORTED_SUITE', 'provisioned certificate suite');
  if (!bytesEqual(tbs.dik, pending.dik) || tbs.deviceId !== pending.deviceId) throw new CryptoError('MALFORMED', 'the certificate is not for this device');
  if (!verify(tbs.aik, 'device-cert', tbsBytes, aikSig)) throw new CryptoError('BAD_SIGNATURE', 'aik_sig of the provisioned certificate');
  if (((tbs.flags & DEVICE_FLAG_AIK_HOLDER) !== 0) !== (aikSk !== undefined)) throw new CryptoError('MALFORMED', 'has_aik_sk must match the AIK_HOLDER flag');
  if (aikSk && !bytesEqual(pub(aikSk), tbs.aik)) throw new CryptoError('BAD_KEY', 'the shared account key does not match the certificate');
  return { tbs, tbsBytes, aikSig, ...(aikSk ? { aikSk } : {}), state };
}

/** LinkReply = u8 1 ‖ pop_sig, proving N holds its DIK. */
export function createLinkReply(tbsBytes: Uint8Array, dikSk: Uint8Array, aux?: Uint8Array): Uint8Array {
  return concatBytes(u8(1), sign(dikSk, 'device-pop', tbsBytes, aux));
}

/** The holder checks pop_sig and gets N's full certificate. */
export function completeLink(reply: Uint8Array, tbs: DeviceCertTbs, aikSk: Uint8Array, aux?: Uint8Array): Uint8Array {
  const r = new ByteReader(reply);
  if (r.u8() !== 1) throw new CryptoError('UNSUPPORTED_VERSION', 'LinkReply version');
  const popSig = r.fixed(64);
  r.end();
  const tbsBytes = encodeDeviceCertTbs(tbs);
  if (!verify(tbs.dik, 'device-pop', tbsBytes, popSig)) throw new CryptoError('BAD_SIGNATURE', 'pop_sig does not verify under the new device key');
  return concatBytes(tbsBytes, sign(aikSk, 'device-cert', tbsBytes, aux), popSig);
}

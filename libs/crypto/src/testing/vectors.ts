/**
 * PROTOCOL.md §14 test vectors (items 1–6 and 9), generated from fixed inputs. Not part of the
 * public API: `scripts/gen-vectors.ts` writes them to `libs/crypto/vectors/*.json` and
 * `vectors.spec.ts` re-derives them byte for byte and replays every negative case.
 *
 * Every byte string is lower-case hex. Negative cases name a `check` (see CHECKS) and an
 * `outcome`: "ok", "false" (a verifier returned false) or a CryptoError code.
 */
import { bech32, bech32m } from '@scure/base';
import { consistencyProof, inclusionProof, merkleLeafHash, merkleRoot, verifyConsistency, verifyInclusion } from '../merkle';
import { cosignSth, createSth, encodeKtLeaf, parseKtLeaf, verifySth } from '../kt';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { ml_kem1024 } from '@noble/post-quantum/ml-kem.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { b64uEncode, concatBytes, hexDecode, hexEncode, u16, u32, u64, u8 } from '../bytes';
import { CryptoError } from '../errors';
import { encodeContent, envelopeExpiry, expiryAfterRead, pad, unpad, type Content } from '../content';
import {
  DEVICE_FLAG_AIK_HOLDER,
  DEVICE_FLAG_HEADER_ENCRYPTION,
  accountIdOf,
  createAuthResponse,
  createDeviceCertificate,
  createSignedDeviceList,
  createSignedHandleClaim,
  decodeAccountId,
  encodeAccountId,
  encodeDeviceCertTbs,
  parseAuthResponse,
  parseDeviceCertificate,
  verifyAuthResponse,
  verifyDeviceCertificate,
  verifySignedDeviceList,
  verifySignedHandleClaim,
  type DeviceCertTbs,
} from '../identity';
import { completeLink, createLinkReply, createPendingLink, createProvisioningMessage, openProvisioningMessage, parseLinkQr } from '../linking';
import { PREKEY_KIND, createPreKeyRecord, encodePreKeyBundle, parsePreKeyBundle, parsePreKeyRecord, verifyPreKeyRecord } from '../prekeys';
import { SUITE_V1, ascii, ecdh, hkdf, isValidPublicKey, pub, sha256, sign, taggedHash, verify } from '../primitives';
import { safetyNumber, verifySafetyQr } from '../safety-number';
import { addr, encodePreKeyMessage, parsePreKeyMessage, pqxdhInitiate, pqxdhRespond, verifyBundle } from '../session/pqxdh';
import { initInitiator, initResponder, kdfCk, kdfRk, msgKeys, ratchetDecrypt, ratchetEncrypt, type RatchetState } from '../session/ratchet';
import { chainFromSkdm, newSenderChain, parseSenderKeyMessage, senderKeyDecrypt, senderKeyEncrypt, skdmOf, type SenderChain } from '../session/sender-keys';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

const hex = hexEncode;
const te = new TextEncoder();
const AUX = new Uint8Array(32);
/** 2023-11-14T22:13:20Z: every time in the vectors is relative to it. */
export const T0 = 1_700_000_000_000;
const N = secp256k1.Point.CURVE().n;
const P = secp256k1.Point.CURVE().p;

function be32(v: bigint): Uint8Array {
  return hexDecode(v.toString(16).padStart(64, '0'));
}

/** A fixed secret key: SHA256("umbra/v1/test-vector/" ‖ label) (all of them happen to be in [1, n−1]). */
export function fixedSk(label: string): Uint8Array {
  const sk = sha256(ascii(`umbra/v1/test-vector/${label}`));
  if (BigInt(`0x${hex(sk)}`) >= N) throw new Error(`fixed key ${label} out of range`);
  return sk;
}

/** A fixed byte string of length n: SHA256 in counter mode over the label. */
export function fixedBytes(label: string, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0, o = 0; o < n; i++, o += 32) out.set(sha256(concatBytes(ascii(`umbra/v1/test-vector/${label}`), u32(i))).subarray(0, Math.min(32, n - o)), o);
  return out;
}

function flip(b: Uint8Array, i: number, bit = 0x01): Uint8Array {
  const t = b.slice();
  const j = i < 0 ? t.length + i : i;
  t[j]! ^= bit;
  return t;
}

const str = (c: Obj, k: string): string => {
  const v = c[k];
  if (typeof v !== 'string') throw new Error(`vector field ${k} missing`);
  return v;
};
const bytes = (c: Obj, k: string): Uint8Array => hexDecode(str(c, k));
const num = (c: Obj, k: string): number => {
  const v = c[k];
  if (typeof v !== 'number') throw new Error(`vector field ${k} missing`);
  return v;
};

/**
 * The checks negative (and some positive) cases run, by name. Each takes the case's fields and
 * returns a value (false → outcome "false") or throws a CryptoError (outcome = its code).
 */
export const CHECKS: Record<string, (c: Obj) => unknown> = {
  pub: (c) => pub(bytes(c, 'sk')),
  ecdh: (c) => ecdh(bytes(c, 'sk'), bytes(c, 'pk')),
  sign: (c) => sign(bytes(c, 'sk'), str(c, 'purpose'), bytes(c, 'msg'), AUX),
  verify: (c) => verify(bytes(c, 'pk'), str(c, 'purpose'), bytes(c, 'msg'), bytes(c, 'sig')),
  account_text: (c) => decodeAccountId(str(c, 'text')),
  device_certificate: (c) => verifyDeviceCertificate(parseDeviceCertificate(bytes(c, 'bytes'))),
  device_list: (c) => verifySignedDeviceList(bytes(c, 'bytes')),
  handle_claim: (c) => verifySignedHandleClaim(bytes(c, 'bytes'), bytes(c, 'aik')),
  auth_response: (c) => verifyAuthResponse(parseAuthResponse(bytes(c, 'bytes')), bytes(c, 'dik')),
  prekey_record: (c) => verifyPreKeyRecord(parsePreKeyRecord(bytes(c, 'bytes')), bytes(c, 'dik')),
  prekey_bundle: (c) => verifyBundle(parsePreKeyBundle(bytes(c, 'bytes')), num(c, 'now')),
  link_qr: (c) => parseLinkQr(str(c, 'qr')),
  provisioning_message: (c) => {
    const ephSk = bytes(c, 'eph_sk');
    const dikSk = bytes(c, 'dik_sk');
    return openProvisioningMessage(bytes(c, 'bytes'), { ephSk, dikSk, eph: pub(ephSk), dik: pub(dikSk), deviceId: num(c, 'device_id') });
  },
  link_reply: (c) => {
    const tbs = parseDeviceCertificate(concatBytes(bytes(c, 'tbs'), new Uint8Array(128)));
    return completeLink(bytes(c, 'bytes'), tbs, bytes(c, 'aik_sk'), AUX);
  },
  unpad: (c) => unpad(bytes(c, 'padded')),
  prekey_message: (c) => parsePreKeyMessage(bytes(c, 'bytes')),
  pqxdh_initiate: (c) => {
    const self = parseDeviceCertificate(bytes(c, 'sender_cert'));
    return pqxdhInitiate({ cert: self, dikSk: bytes(c, 'dik_sk') }, parsePreKeyBundle(bytes(c, 'bundle')), { ekSk: bytes(c, 'ek_sk'), kemM: bytes(c, 'kem_m') });
  },
  pqxdh_respond: (c) => {
    const self = parseDeviceCertificate(bytes(c, 'responder_cert'));
    const m = parsePreKeyMessage(bytes(c, 'bytes'));
    const spkSk = bytes(c, 'spk_sk');
    const opkSk = c.opk_sk ? bytes(c, 'opk_sk') : undefined;
    const kemSeed = bytes(c, 'kem_seed');
    const s = pqxdhRespond({ cert: self, dikSk: bytes(c, 'dik_sk') }, m, { spkSk, ...(opkSk ? { opkSk } : {}), kemSeedOrSk: kemSeed, kemPk: ml_kem1024.keygen(kemSeed).publicKey });
    const st = initResponder({ rk0: s.rk0, spkSk, self: addr(self), peer: addr(m.cert), baseKey: m.ek, now: T0, ...(s.headerEncryption ? { headerKeys: { hkA: s.hkA, hkB: s.hkB } } : {}) });
    return ratchetDecrypt(st, m.ratchetMessage, T0, { dhsSk: bytes(c, 'next_dhs_sk') });
  },
  safety_qr: (c) => verifySafetyQr(str(c, 'ours'), str(c, 'scanned')),
  merkle_inclusion: (c) => verifyInclusion(bytes(c, 'leaf_hash'), num(c, 'index'), num(c, 'size'), hexList(c, 'path'), bytes(c, 'root')),
  kt_leaf: (c) => parseKtLeaf(bytes(c, 'bytes')),
  sth: (c) => verifySth(bytes(c, 'bytes'), { logPk: bytes(c, 'log_pk'), witnessPks: hexList(c, 'witness_pks'), minCosigners: num(c, 'min_cosigners') }, num(c, 'now')),
  merkle_consistency: (c) => verifyConsistency(num(c, 'size1'), num(c, 'size2'), bytes(c, 'root1'), bytes(c, 'root2'), hexList(c, 'proof')),
};

function hexList(c: Obj, k: string): Uint8Array[] {
  const v = c[k];
  if (!Array.isArray(v)) throw new Error(`vector field ${k} missing`);
  return v.map((e) => hexDecode(e as string));
}

/** Runs a named check and reports its outcome; anything but a CryptoError propagates. */
export function outcomeOf(check: string, c: Obj): string {
  const f = CHECKS[check];
  if (!f) throw new Error(`unknown check ${check}`);
  try {
    return f(c) === false ? 'false' : 'ok';
  } catch (err) {
    if (err instanceof CryptoError) return err.code;
    throw err;
  }
}

/** A case whose outcome is asserted at generation time, so a vector file never records an unintended result. */
function neg(name: string, check: string, fields: Obj, outcome: string): Obj {
  const c: Obj = { name, check, ...fields, outcome };
  const got = outcomeOf(check, c);
  if (got !== outcome) throw new Error(`vector ${name}: expected ${outcome}, got ${got}`);
  return c;
}

// ---------------------------------------------------------------------------------------------
// 1. Primitives

const SIG_PURPOSES = ['device-cert', 'device-pop', 'device-list', 'handle-claim', 'auth', 'prekey', 'kem-prekey', 'sender-key', 'kt-sth', 'kt-witness', 'kt-lookup'];
const TAGS = ['umbra/v1/account-id', 'umbra/v1/kt-handle', 'umbra/v1/pin', ...SIG_PURPOSES.map((p) => `umbra/v1/sig/${p}`)];

function primitives(): Obj {
  const one = be32(1n);
  const two = be32(2n);
  const ecdhCases: Json[] = [{ name: 'ECDH(1, Pub(2)) = x(2G) (known value)', sk: hex(one), pk: hex(pub(two)), shared: hex(ecdh(one, pub(two))) }];
  // parity independence: b·G has odd y, n−b has even y and the same x; both give the same secret.
  let b = fixedSk('ecdh-b');
  for (let i = 0; secp256k1.Point.BASE.multiply(BigInt(`0x${hex(b)}`)).toAffine().y % 2n === 0n; i++) b = fixedSk(`ecdh-b-${i}`);
  const bNeg = be32(N - BigInt(`0x${hex(b)}`));
  const a = fixedSk('ecdh-a');
  const shared = ecdh(a, pub(b));
  if (hex(ecdh(b, pub(a))) !== hex(shared) || hex(ecdh(bNeg, pub(a))) !== hex(shared)) throw new Error('parity independence');
  ecdhCases.push({ name: 'parity independence: b·G has odd y; ECDH(a, Pub(b)) = ECDH(b, Pub(a)) = ECDH(n−b, Pub(a))', sk_a: hex(a), sk_b: hex(b), sk_b_negated: hex(bNeg), pub_a: hex(pub(a)), pub_b: hex(pub(b)), shared: hex(shared) });
  const c = fixedSk('ecdh-c');
  ecdhCases.push({ name: 'fixed scalars', sk: hex(c), pk: hex(pub(a)), shared: hex(ecdh(c, pub(a))) });

  let firstValid = 1n;
  while (!isValidPublicKey(be32(firstValid))) firstValid++;
  let firstInvalid = 1n;
  while (isValidPublicKey(be32(firstInvalid))) firstInvalid++;
  const negatives: Json[] = [
    neg('x = p', 'ecdh', { sk: hex(a), pk: hex(be32(P)) }, 'BAD_KEY'),
    neg(`x = p + ${firstValid} (x − p would lift; never reduced)`, 'ecdh', { sk: hex(a), pk: hex(be32(P + firstValid)) }, 'BAD_KEY'),
    neg('x = 2^256 − 1', 'ecdh', { sk: hex(a), pk: 'ff'.repeat(32) }, 'BAD_KEY'),
    neg('x = 0 (not on the curve: 7 is a non-residue)', 'ecdh', { sk: hex(a), pk: hex(be32(0n)) }, 'BAD_KEY'),
    neg(`x = ${firstInvalid} (x³ + 7 is not a square)`, 'ecdh', { sk: hex(a), pk: hex(be32(firstInvalid)) }, 'BAD_KEY'),
    neg('33-byte compressed key', 'ecdh', { sk: hex(a), pk: `02${hex(pub(b))}` }, 'BAD_KEY'),
    neg('secret key 0', 'ecdh', { sk: hex(be32(0n)), pk: hex(pub(b)) }, 'BAD_KEY'),
    neg('secret key n', 'ecdh', { sk: hex(be32(N)), pk: hex(pub(b)) }, 'BAD_KEY'),
    neg('secret key 0', 'pub', { sk: hex(be32(0n)) }, 'BAD_KEY'),
    neg('secret key n', 'pub', { sk: hex(be32(N)) }, 'BAD_KEY'),
    neg('secret key n + 1 (never reduced mod n)', 'pub', { sk: hex(be32(N + 1n)) }, 'BAD_KEY'),
    neg('secret key n − 1 (valid; Pub(n−1) = x(G))', 'pub', { sk: hex(be32(N - 1n)) }, 'ok'),
    neg('secret key 0', 'sign', { sk: hex(be32(0n)), purpose: 'auth', msg: '00' }, 'BAD_KEY'),
    neg('secret key n', 'sign', { sk: hex(be32(N)), purpose: 'auth', msg: '00' }, 'BAD_KEY'),
  ];
  if (hex(pub(be32(N - 1n))) !== hex(be32(secp256k1.Point.BASE.toAffine().x))) throw new Error('Pub(n-1)');

  const msgs = [new Uint8Array(0), fixedBytes('th-msg', 45)];
  const th: Json[] = [];
  for (const tag of TAGS) for (const m of msgs) th.push({ tag, msg: hex(m), hash: hex(taggedHash(tag, m)) });

  const sk = fixedSk('signer');
  const pk = pub(sk);
  const msg = fixedBytes('sig-msg', 83);
  const sigs: Json[] = [];
  for (const purpose of SIG_PURPOSES) {
    const sig = sign(sk, purpose, msg, AUX);
    const other = purpose === 'auth' ? 'prekey' : 'auth';
    sigs.push({
      purpose,
      sk: hex(sk),
      pk: hex(pk),
      aux: hex(AUX),
      msg: hex(msg),
      msg32: hex(taggedHash(`umbra/v1/sig/${purpose}`, msg)),
      sig: hex(sig),
      negatives: [
        neg('valid', 'verify', { pk: hex(pk), purpose, msg: hex(msg), sig: hex(sig) }, 'ok'),
        neg(`wrong tag (${other})`, 'verify', { pk: hex(pk), purpose: other, msg: hex(msg), sig: hex(sig) }, 'false'),
        neg('flipped bit in R', 'verify', { pk: hex(pk), purpose, msg: hex(msg), sig: hex(flip(sig, 5)) }, 'false'),
        neg('flipped bit in s', 'verify', { pk: hex(pk), purpose, msg: hex(msg), sig: hex(flip(sig, 40, 0x80)) }, 'false'),
        neg('flipped bit in the message', 'verify', { pk: hex(pk), purpose, msg: hex(flip(msg, 0)), sig: hex(sig) }, 'false'),
        neg('another public key', 'verify', { pk: hex(pub(a)), purpose, msg: hex(msg), sig: hex(sig) }, 'false'),
      ],
    });
  }

  const hk = hkdf({ salt: new Uint8Array(32), ikm: fixedBytes('hkdf-ikm', 32), info: ascii('umbra/v1/mk'), length: 44 });
  return {
    description: 'PROTOCOL.md §0 primitives (suite 0x0001). ECDH outputs are x-coordinates; Sign uses aux = 0x00×32.',
    ecdh: ecdhCases,
    ecdh_and_secret_key_negatives: negatives,
    tagged_hash: th,
    sign: sigs,
    hkdf: [{ salt: hex(new Uint8Array(32)), ikm: hex(fixedBytes('hkdf-ikm', 32)), info: hex(ascii('umbra/v1/mk')), length: 44, okm: hex(hk) }],
  };
}

// ---------------------------------------------------------------------------------------------
// 2. Identity

interface FixedDevice {
  label: string;
  aikSk: Uint8Array;
  dikSk: Uint8Array;
  deviceId: number;
  flags: number;
  certBytes: Uint8Array;
}

function fixedDevice(label: string, aikLabel: string, deviceId: number, flags: number): FixedDevice {
  const aikSk = fixedSk(`aik-${aikLabel}`);
  const dikSk = fixedSk(`dik-${label}`);
  const tbs: DeviceCertTbs = { suite: SUITE_V1, aik: pub(aikSk), deviceId, dik: pub(dikSk), createdAt: T0, flags };
  return { label, aikSk, dikSk, deviceId, flags, certBytes: createDeviceCertificate(tbs, aikSk, dikSk, AUX) };
}

function deviceJson(d: FixedDevice): Obj {
  const c = parseDeviceCertificate(d.certBytes);
  return { aik_sk: hex(d.aikSk), aik: hex(c.aik), dik_sk: hex(d.dikSk), dik: hex(c.dik), device_id: d.deviceId, created_at: T0, flags: d.flags, tbs: hex(c.tbsBytes), certificate: hex(d.certBytes), addr: hex(addr(c)) };
}

function resignCert(tbs: DeviceCertTbs, aikSk: Uint8Array, dikSk: Uint8Array): Uint8Array {
  const t = encodeDeviceCertTbs(tbs);
  return concatBytes(t, sign(aikSk, 'device-cert', t, AUX), sign(dikSk, 'device-pop', t, AUX));
}

function identity(): Obj {
  const d1 = fixedDevice('a1', 'a', 1, DEVICE_FLAG_AIK_HOLDER);
  const d2 = fixedDevice('a2', 'a', 2, DEVICE_FLAG_HEADER_ENCRYPTION);
  const aik = pub(d1.aikSk);
  const id = accountIdOf(aik);
  const text = encodeAccountId(id);
  const words = bech32m.toWords(id);
  const badPad = words.slice();
  badPad[badPad.length - 1]! |= 1;
  const account = {
    aik_sk: hex(d1.aikSk),
    aik: hex(aik),
    account_id: hex(id),
    text,
    negatives: [
      neg('valid', 'account_text', { text }, 'ok'),
      neg('upper case', 'account_text', { text: text.toUpperCase() }, 'MALFORMED'),
      neg('other HRP', 'account_text', { text: bech32m.encode('ux', words) }, 'MALFORMED'),
      neg('bech32 (not bech32m) checksum', 'account_text', { text: bech32.encode('um', words) }, 'MALFORMED'),
      neg('non-zero padding bits', 'account_text', { text: bech32m.encode('um', badPad) }, 'MALFORMED'),
      neg('31-byte payload', 'account_text', { text: bech32m.encode('um', bech32m.toWords(id.subarray(0, 31))) }, 'MALFORMED'),
      neg('flipped character', 'account_text', { text: text.slice(0, 10) + (text[10] === 'q' ? 'p' : 'q') + text.slice(11) }, 'MALFORMED'),
    ],
  };

  const c1 = parseDeviceCertificate(d1.certBytes);
  const tbs1: DeviceCertTbs = { suite: SUITE_V1, aik, deviceId: 1, dik: c1.dik, createdAt: T0, flags: DEVICE_FLAG_AIK_HOLDER };
  const certNeg = [
    neg('valid', 'device_certificate', { bytes: hex(d1.certBytes) }, 'ok'),
    neg('flipped bit in aik_sig', 'device_certificate', { bytes: hex(flip(d1.certBytes, 83 + 10)) }, 'BAD_SIGNATURE'),
    neg('flipped bit in pop_sig', 'device_certificate', { bytes: hex(flip(d1.certBytes, 83 + 64 + 10)) }, 'BAD_SIGNATURE'),
    neg('flipped bit in created_at', 'device_certificate', { bytes: hex(flip(d1.certBytes, 74)) }, 'BAD_SIGNATURE'),
    neg('flags changed (bit1 set) after signing', 'device_certificate', { bytes: hex(flip(d1.certBytes, 82, 0x02)) }, 'BAD_SIGNATURE'),
    neg('version 2', 'device_certificate', { bytes: hex(flip(d1.certBytes, 0, 0x03)) }, 'UNSUPPORTED_VERSION'),
    neg('suite 0x0002', 'device_certificate', { bytes: hex(flip(d1.certBytes, 2, 0x03)) }, 'UNSUPPORTED_SUITE'),
    neg('device_id 0 (correctly signed)', 'device_certificate', { bytes: hex(resignCert({ ...tbs1, deviceId: 0 }, d1.aikSk, d1.dikSk)) }, 'MALFORMED'),
    neg('truncated by one byte', 'device_certificate', { bytes: hex(d1.certBytes.subarray(0, 210)) }, 'MALFORMED'),
    neg('one trailing byte', 'device_certificate', { bytes: hex(concatBytes(d1.certBytes, u8(0))) }, 'MALFORMED'),
  ];

  const list = createSignedDeviceList({ aik, listVersion: 3, issuedAt: T0 + 1000, certificates: [d1.certBytes, d2.certBytes] }, d1.aikSk, AUX);
  const unsorted = createSignedDeviceList({ aik, listVersion: 3, issuedAt: T0 + 1000, certificates: [d2.certBytes, d1.certBytes] }, d1.aikSk, AUX);
  const empty = createSignedDeviceList({ aik, listVersion: 3, issuedAt: T0 + 1000, certificates: [] }, d1.aikSk, AUX);
  const other = fixedDevice('b1', 'b', 3, 0);
  const foreign = createSignedDeviceList({ aik, listVersion: 3, issuedAt: T0 + 1000, certificates: [d1.certBytes, other.certBytes] }, d1.aikSk, AUX);
  const listNeg = [
    neg('valid', 'device_list', { bytes: hex(list) }, 'ok'),
    neg('flipped bit in the list signature', 'device_list', { bytes: hex(flip(list, -1)) }, 'BAD_SIGNATURE'),
    neg('flipped bit in list_version', 'device_list', { bytes: hex(flip(list, 42)) }, 'BAD_SIGNATURE'),
    neg('flipped bit in a certificate signature (list re-signed)', 'device_list', { bytes: hex(createSignedDeviceList({ aik, listVersion: 3, issuedAt: T0 + 1000, certificates: [d1.certBytes, flip(d2.certBytes, 100)] }, d1.aikSk, AUX)) }, 'BAD_SIGNATURE'),
    neg('device ids not ascending', 'device_list', { bytes: hex(unsorted) }, 'MALFORMED'),
    neg('count 0', 'device_list', { bytes: hex(empty) }, 'MALFORMED'),
    neg("certificate of another account's AIK", 'device_list', { bytes: hex(foreign) }, 'MALFORMED'),
    neg('truncated', 'device_list', { bytes: hex(list.subarray(0, list.length - 1)) }, 'MALFORMED'),
    neg('trailing byte', 'device_list', { bytes: hex(concatBytes(list, u8(0))) }, 'MALFORMED'),
  ];

  const claim = createSignedHandleClaim({ handle: 'alice_1', accountId: id, claimVersion: 1, issuedAt: T0 }, d1.aikSk, AUX);
  const rawClaim = (h: string) => {
    const hb = ascii(h);
    const tbs = concatBytes(u8(1), u16(SUITE_V1), u8(hb.length), hb, id, u64(1), u64(T0));
    return concatBytes(tbs, sign(d1.aikSk, 'handle-claim', tbs, AUX));
  };
  const claimNeg = [
    neg('valid', 'handle_claim', { bytes: hex(claim), aik: hex(aik) }, 'ok'),
    neg('not canonical (upper case), correctly signed', 'handle_claim', { bytes: hex(rawClaim('Alice_1')), aik: hex(aik) }, 'INVALID_HANDLE'),
    neg('too short, correctly signed', 'handle_claim', { bytes: hex(rawClaim('al')), aik: hex(aik) }, 'INVALID_HANDLE'),
    neg('flipped bit in the signature', 'handle_claim', { bytes: hex(flip(claim, -1)), aik: hex(aik) }, 'BAD_SIGNATURE'),
    neg('another AIK', 'handle_claim', { bytes: hex(claim), aik: hex(pub(other.aikSk)) }, 'BAD_SIGNATURE'),
    neg('trailing byte', 'handle_claim', { bytes: hex(concatBytes(claim, u8(0))) , aik: hex(aik) }, 'MALFORMED'),
  ];

  const nonce = fixedBytes('auth-nonce', 32);
  const auth = createAuthResponse({ origin: 'https://chat.example', accountId: id, deviceId: 1, nonce, clientTime: T0 }, d1.dikSk, AUX);
  const authNeg = [
    neg('valid', 'auth_response', { bytes: hex(auth), dik: hex(c1.dik) }, 'ok'),
    neg('flipped bit in the nonce', 'auth_response', { bytes: hex(flip(auth, 3 + 1 + 20 + 32 + 4 + 3)), dik: hex(c1.dik) }, 'false'),
    neg('flipped bit in the signature', 'auth_response', { bytes: hex(flip(auth, -1)), dik: hex(c1.dik) }, 'false'),
    neg('signed by the AIK instead of the DIK', 'auth_response', { bytes: hex(auth), dik: hex(aik) }, 'false'),
    neg('truncated', 'auth_response', { bytes: hex(auth.subarray(0, auth.length - 1)), dik: hex(c1.dik) }, 'MALFORMED'),
  ];

  const spkSk = fixedSk('spk-a1');
  const spk = createPreKeyRecord({ accountId: id, deviceId: 1, kind: PREKEY_KIND.SPK, keyId: 0, publicKey: pub(spkSk), createdAt: T0 }, d1.dikSk, AUX);
  const badPk = createPreKeyRecord({ accountId: id, deviceId: 1, kind: PREKEY_KIND.OPK, keyId: 9, publicKey: be32(0n), createdAt: T0 }, d1.dikSk, AUX);
  const prekeyNeg = [
    neg('valid', 'prekey_record', { bytes: hex(spk), dik: hex(c1.dik) }, 'ok'),
    neg('flipped bit in PK', 'prekey_record', { bytes: hex(flip(spk, 50)), dik: hex(c1.dik) }, 'BAD_SIGNATURE'),
    neg('flipped bit in key_id', 'prekey_record', { bytes: hex(flip(spk, 43)), dik: hex(c1.dik) }, 'BAD_SIGNATURE'),
    neg('kind 5', 'prekey_record', { bytes: hex(flip(spk, 39, 0x04)), dik: hex(c1.dik) }, 'MALFORMED'),
    neg('PK not on the curve, correctly signed', 'prekey_record', { bytes: hex(badPk), dik: hex(c1.dik) }, 'BAD_KEY'),
    neg('trailing byte', 'prekey_record', { bytes: hex(concatBytes(spk, u8(0))), dik: hex(c1.dik) }, 'MALFORMED'),
  ];

  // Linking: new device N (id 0x01020304) linked by the AIK holder d1.
  const ephSk = fixedSk('link-eph');
  const nDikSk = fixedSk('link-dik');
  const deviceIdN = 0x01020304;
  const { pending, qr } = createPendingLink(deviceIdN, { ephSk, dikSk: nDikSk });
  const state = te.encode('{"contacts":[]}');
  const eSk = fixedSk('link-e');
  const { message, tbs } = createProvisioningMessage(parseLinkQr(qr), { aik, aikSk: d1.aikSk }, { createdAt: T0, state, eSk, aux: AUX });
  const opened = openProvisioningMessage(message, pending);
  const reply = createLinkReply(opened.tbsBytes, nDikSk, AUX);
  const certN = completeLink(reply, tbs, d1.aikSk, AUX);
  const qrPayload = concatBytes(pending.eph, pending.dik, u32(deviceIdN));
  const qrOf = (b: Uint8Array) => `umbra-link:1:${b64uEncode(b)}`;
  const provFields = { eph_sk: hex(ephSk), dik_sk: hex(nDikSk), device_id: deviceIdN };
  const linking = {
    new_device: { eph_sk: hex(ephSk), eph: hex(pending.eph), dik_sk: hex(nDikSk), dik: hex(pending.dik), device_id: deviceIdN },
    link_qr: qr,
    holder: { aik_sk: hex(d1.aikSk), e_sk: hex(eSk), e: hex(pub(eSk)), shared: hex(ecdh(eSk, pending.eph)) },
    provisioning_key_nonce: hex(hkdf({ salt: new Uint8Array(32), ikm: ecdh(eSk, pending.eph), info: concatBytes(ascii('umbra/v1/provision'), u16(SUITE_V1), pub(eSk), pending.eph, pending.dik, u32(deviceIdN)), length: 44 })),
    provisioning_payload_state: hex(state),
    certificate_tbs: hex(opened.tbsBytes),
    aik_sig: hex(opened.aikSig),
    provisioning_message: hex(message),
    link_reply: hex(reply),
    completed_certificate: hex(certN),
    negatives: [
      neg('valid QR', 'link_qr', { qr }, 'ok'),
      neg('device_id 0', 'link_qr', { qr: qrOf(concatBytes(pending.eph, pending.dik, u32(0))) }, 'MALFORMED'),
      neg('EPH not on the curve', 'link_qr', { qr: qrOf(concatBytes(be32(0n), pending.dik, u32(deviceIdN))) }, 'BAD_KEY'),
      neg('base64 padding', 'link_qr', { qr: `${qr}==` }, 'MALFORMED'),
      neg('one payload byte short', 'link_qr', { qr: qrOf(qrPayload.subarray(0, 67)) }, 'MALFORMED'),
      neg('valid ProvisioningMessage', 'provisioning_message', { bytes: hex(message), ...provFields }, 'ok'),
      neg('flipped ciphertext bit', 'provisioning_message', { bytes: hex(flip(message, 60)), ...provFields }, 'DECRYPT_FAILED'),
      neg('another E', 'provisioning_message', { bytes: hex(concatBytes(u8(1), pub(fixedSk('link-e2')), message.subarray(33))), ...provFields }, 'DECRYPT_FAILED'),
      neg('version 2', 'provisioning_message', { bytes: hex(flip(message, 0, 0x03)), ...provFields }, 'UNSUPPORTED_VERSION'),
      neg('valid LinkReply', 'link_reply', { bytes: hex(reply), tbs: hex(opened.tbsBytes), aik_sk: hex(d1.aikSk) }, 'ok'),
      neg('flipped bit in pop_sig', 'link_reply', { bytes: hex(flip(reply, 10)), tbs: hex(opened.tbsBytes), aik_sk: hex(d1.aikSk) }, 'BAD_SIGNATURE'),
      neg('trailing byte', 'link_reply', { bytes: hex(concatBytes(reply, u8(0))), tbs: hex(opened.tbsBytes), aik_sk: hex(d1.aikSk) }, 'MALFORMED'),
    ],
  };

  return {
    description: 'PROTOCOL.md §1–§2 identity structures from fixed keys, aux = 0x00×32, created_at = T0.',
    t0: T0,
    account,
    devices: [deviceJson(d1), deviceJson(d2)],
    device_certificate_negatives: certNeg,
    signed_device_list: { list_version: 3, issued_at: T0 + 1000, bytes: hex(list), negatives: listNeg },
    signed_handle_claim: { handle: 'alice_1', claim_version: 1, issued_at: T0, bytes: hex(claim), negatives: claimNeg },
    auth_response: { origin: 'https://chat.example', nonce: hex(nonce), client_time: T0, bytes: hex(auth), negatives: authNeg },
    prekey_record: { spk_sk: hex(spkSk), kind: 1, key_id: 0, bytes: hex(spk), negatives: prekeyNeg },
    linking,
  };
}

// ---------------------------------------------------------------------------------------------
// 3. PQXDH

interface Responder {
  dev: FixedDevice;
  spkSk: Uint8Array;
  opkSk: Uint8Array;
  pqopkSeed: Uint8Array;
  pqlrSeed: Uint8Array;
  records: { spk: Uint8Array; opk: Uint8Array; pqopk: Uint8Array; pqlr: Uint8Array };
}

function responder(flags: number): Responder {
  const dev = fixedDevice('b1', 'b', 7, flags);
  const owner = accountIdOf(pub(dev.aikSk));
  const spkSk = fixedSk('spk-b1');
  const opkSk = fixedSk('opk-b1');
  const pqopkSeed = fixedBytes('pqopk-b1-d-z', 64);
  const pqlrSeed = fixedBytes('pqlr-b1-d-z', 64);
  const rec = (kind: 1 | 2 | 3 | 4, keyId: number, publicKey: Uint8Array) => createPreKeyRecord({ accountId: owner, deviceId: 7, kind, keyId, publicKey, createdAt: T0 }, dev.dikSk, AUX);
  return {
    dev,
    spkSk,
    opkSk,
    pqopkSeed,
    pqlrSeed,
    records: {
      spk: rec(1, 11, pub(spkSk)),
      opk: rec(2, 22, pub(opkSk)),
      pqopk: rec(3, 33, ml_kem1024.keygen(pqopkSeed).publicKey),
      pqlr: rec(4, 44, ml_kem1024.keygen(pqlrSeed).publicKey),
    },
  };
}

function pqxdhCase(name: string, a: FixedDevice, b: Responder, withOpk: boolean, kem: 'pqopk' | 'pqlr', label: string): Obj {
  const bundleBytes = encodePreKeyBundle({ certificate: b.dev.certBytes, signedPreKey: b.records.spk, ...(withOpk ? { oneTimePreKey: b.records.opk } : {}), kemPreKey: b.records[kem] });
  const bundle = parsePreKeyBundle(bundleBytes);
  verifyBundle(bundle, T0);
  const ekSk = fixedSk(`ek-${label}`);
  const kemM = fixedBytes(`kem-m-${label}`, 32);
  const aCert = parseDeviceCertificate(a.certBytes);
  const init = pqxdhInitiate({ cert: aCert, dikSk: a.dikSk }, bundle, { ekSk, kemM });
  const spk = pub(b.spkSk);
  const dh = [ecdh(a.dikSk, spk), ecdh(ekSk, parseDeviceCertificate(b.dev.certBytes).dik), ecdh(ekSk, spk), ...(withOpk ? [ecdh(ekSk, pub(b.opkSk))] : [])];
  const seed = kem === 'pqopk' ? b.pqopkSeed : b.pqlrSeed;
  const kemPk = ml_kem1024.keygen(seed).publicKey;
  const enc = ml_kem1024.encapsulate(kemPk, kemM);
  const info = concatBytes(
    ascii('umbra/v1/pqxdh'), u16(SUITE_V1), addr(aCert), addr(bundle.certificate), spk, u32(11), init.baseKey,
    withOpk ? concatBytes(u8(1), pub(b.opkSk), u32(22)) : u8(0),
    u8(bundle.kemPreKey.kind), u32(bundle.kemPreKey.keyId), sha256(kemPk), sha256(enc.cipherText),
  );
  const ikm = concatBytes(new Uint8Array(32).fill(0xff), ...dh, enc.sharedSecret);
  const okm = hkdf({ salt: new Uint8Array(32), ikm, info, length: 96 });
  if (hex(okm.subarray(0, 32)) !== hex(init.rk0) || hex(enc.cipherText) !== hex(init.fields.ct)) throw new Error('pqxdh mismatch');
  const headerKeys = init.headerEncryption ? { hkA: init.hkA, hkB: init.hkB } : undefined;
  const dhsSk = fixedSk(`dhs-${label}`);
  const alice = initInitiator({ rk0: init.rk0, peerSpk: init.spk, self: addr(aCert), peer: addr(bundle.certificate), baseKey: init.baseKey, pendingPrekey: new Uint8Array(0), now: T0, dhsSk, ...(headerKeys ? { headerKeys } : {}) });
  const first = ratchetEncrypt(alice, te.encode('hello'), T0, { headerNonce: fixedBytes(`hn-${label}`, 12) });
  const pkm = encodePreKeyMessage(init.fields, first.message);
  const nextDhs = fixedSk(`dhs-b-${label}`);
  const respFields: Obj = { responder_cert: hex(b.dev.certBytes), dik_sk: hex(b.dev.dikSk), spk_sk: hex(b.spkSk), ...(withOpk ? { opk_sk: hex(b.opkSk) } : {}), kem_seed: hex(seed), next_dhs_sk: hex(nextDhs) };
  const ctFlipped = pkm.slice();
  const ctOffset = 1 + 211 + 4 + 1 + (withOpk ? 4 : 0) + 32 + 1 + 4;
  ctFlipped[ctOffset + 100]! ^= 1;
  const badEk = kemPk.slice();
  badEk[0] = 0xff;
  badEk[1]! |= 0x0f;
  const badKemRec = createPreKeyRecord({ accountId: accountIdOf(pub(b.dev.aikSk)), deviceId: 7, kind: 3, keyId: 99, publicKey: badEk, createdAt: T0 }, b.dev.dikSk, AUX);
  const badBundle = encodePreKeyBundle({ certificate: b.dev.certBytes, signedPreKey: b.records.spk, kemPreKey: badKemRec });
  const hasOpkAt = 1 + 211 + 4;
  const ekAt = hasOpkAt + 1 + (withOpk ? 4 : 0);
  const flipEk = (onCurve: boolean): Uint8Array => {
    for (let i = 0; i < 256; i++) {
      const t = flip(pkm, ekAt + 31 - (i >> 3), 1 << (i & 7));
      if (isValidPublicKey(t.subarray(ekAt, ekAt + 32)) === onCurve) return t;
    }
    throw new Error('no such bit');
  };
  return {
    name,
    initiator: { ek_sk: hex(ekSk), ek: hex(init.baseKey), dik_sk: hex(a.dikSk), certificate: hex(a.certBytes) },
    bundle: hex(bundleBytes),
    kem: { kind: bundle.kemPreKey.kind, key_id: bundle.kemPreKey.keyId, seed_d_z: hex(seed), public_key: hex(kemPk), m: hex(kemM), ciphertext: hex(enc.cipherText), shared_secret: hex(enc.sharedSecret) },
    dh1: hex(dh[0]!),
    dh2: hex(dh[1]!),
    dh3: hex(dh[2]!),
    ...(withOpk ? { dh4: hex(dh[3]!) } : {}),
    info: hex(info),
    ikm: hex(ikm),
    okm: hex(okm),
    rk0: hex(init.rk0),
    hk_a: hex(init.hkA),
    hk_b: hex(init.hkB),
    header_encryption: init.headerEncryption,
    first_message: { dhs_sk: hex(dhsSk), ...(headerKeys ? { header_nonce: hex(fixedBytes(`hn-${label}`, 12)) } : {}), plaintext: hex(te.encode('hello')), ratchet_message: hex(first.message), prekey_message: hex(pkm) },
    negatives: [
      neg('valid PreKeyMessage: the responder derives the same keys and decrypts', 'pqxdh_respond', { bytes: hex(pkm), ...respFields }, 'ok'),
      neg('flipped bit in CT (implicit rejection → AEAD failure)', 'pqxdh_respond', { bytes: hex(ctFlipped), ...respFields }, 'DECRYPT_FAILED'),
      neg('flipped bit in EK_A, still on the curve', 'pqxdh_respond', { bytes: hex(flipEk(true)), ...respFields }, 'DECRYPT_FAILED'),
      neg('flipped bit in EK_A, no longer on the curve', 'pqxdh_respond', { bytes: hex(flipEk(false)), ...respFields }, 'BAD_KEY'),
      neg('flipped bit in spk_id', 'pqxdh_respond', { bytes: hex(flip(pkm, hasOpkAt - 1)), ...respFields }, 'DECRYPT_FAILED'),
      neg('pq_kind 5', 'prekey_message', { bytes: hex(flip(pkm, ctOffset - 5, kem === 'pqopk' ? 0x06 : 0x01)) }, 'MALFORMED'),
      neg('has_opk 2', 'prekey_message', { bytes: hex(flip(pkm, hasOpkAt, withOpk ? 0x03 : 0x02)) }, 'MALFORMED'),
      neg('version 2', 'prekey_message', { bytes: hex(flip(pkm, 0, 0x03)) }, 'UNSUPPORTED_VERSION'),
      neg('truncated', 'prekey_message', { bytes: hex(pkm.subarray(0, pkm.length - 1)) }, 'MALFORMED'),
      neg('KEM public key failing the FIPS 203 §7.2 check (coefficient 4095 ≥ q)', 'pqxdh_initiate', { bundle: hex(badBundle), sender_cert: hex(a.certBytes), dik_sk: hex(a.dikSk), ek_sk: hex(ekSk), kem_m: hex(kemM) }, 'BAD_KEY'),
    ],
  };
}

function pqxdh(): Obj {
  const a = fixedDevice('a1', 'a', 1, DEVICE_FLAG_AIK_HOLDER);
  const b = responder(DEVICE_FLAG_AIK_HOLDER);
  const aHe = fixedDevice('a1-he', 'a', 1, DEVICE_FLAG_AIK_HOLDER | DEVICE_FLAG_HEADER_ENCRYPTION);
  const bHe = responder(DEVICE_FLAG_AIK_HOLDER | DEVICE_FLAG_HEADER_ENCRYPTION);
  return {
    description: 'PROTOCOL.md §3 PQXDH. B is device 7 (SPK key_id 11, OPK 22, PQOPK 33, PQLR 44); ML-KEM-1024 key pairs from seeds d‖z, encapsulation from m. The first message uses the given dhs_sk; the responder’s next ratchet key is next_dhs_sk of the negatives.',
    t0: T0,
    responder: { certificate: hex(b.dev.certBytes), dik_sk: hex(b.dev.dikSk), spk_sk: hex(b.spkSk), opk_sk: hex(b.opkSk), spk_record: hex(b.records.spk), opk_record: hex(b.records.opk), pqopk_record: hex(b.records.pqopk), pqlr_record: hex(b.records.pqlr) },
    cases: [
      pqxdhCase('OPK and PQOPK', a, b, true, 'pqopk', 'opk-pqopk'),
      pqxdhCase('no OPK, PQOPK', a, b, false, 'pqopk', 'noopk-pqopk'),
      pqxdhCase('OPK and PQLR', a, b, true, 'pqlr', 'opk-pqlr'),
      pqxdhCase('no OPK, PQLR (last resort only)', a, b, false, 'pqlr', 'noopk-pqlr'),
      pqxdhCase('OPK and PQOPK, both certificates set HEADER_ENCRYPTION', aHe, bHe, true, 'pqopk', 'he'),
    ],
  };
}

// ---------------------------------------------------------------------------------------------
// 4. Ratchet scripts

interface Side {
  state: RatchetState;
  pool: Uint8Array[];
  used: number;
  nonces: number;
}

export interface RatchetScriptInputs {
  he: boolean;
  rk0: Uint8Array;
  spkSk: Uint8Array;
  hkA: Uint8Array;
  hkB: Uint8Array;
  addrA: Uint8Array;
  addrB: Uint8Array;
  aliceDhs0: Uint8Array;
}

/** Ratchet keys a side takes, in order, whenever a received message makes it do a DH ratchet step. */
function ratchetKeyPool(side: 'a' | 'b', he: boolean): Uint8Array[] {
  return Array.from({ length: 8 }, (_, i) => fixedSk(`ratchet-${he ? 'he-' : ''}${side}-${i}`));
}

function headerNonce(side: 'a' | 'b', i: number): Uint8Array {
  return concatBytes(ascii(side === 'a' ? 'A' : 'B'), new Uint8Array(7), u32(i));
}

/**
 * The §14 item 4 script: first message, 5 each way, out of order, replay, skip of exactly 2000
 * (accepted) and 2001 (rejected). Returns the steps as JSON.
 */
function ratchetScript(inp: RatchetScriptInputs): { inputs: Obj; steps: Json[] } {
  const headerKeys = inp.he ? { hkA: inp.hkA, hkB: inp.hkB } : undefined;
  const sides: Record<'a' | 'b', Side> = {
    a: { state: initInitiator({ rk0: inp.rk0, peerSpk: pub(inp.spkSk), self: inp.addrA, peer: inp.addrB, baseKey: new Uint8Array(32), pendingPrekey: new Uint8Array(0), now: T0, dhsSk: inp.aliceDhs0, ...(headerKeys ? { headerKeys } : {}) }), pool: ratchetKeyPool('a', inp.he), used: 0, nonces: 0 },
    b: { state: initResponder({ rk0: inp.rk0, spkSk: inp.spkSk, self: inp.addrB, peer: inp.addrA, baseKey: new Uint8Array(32), now: T0, ...(headerKeys ? { headerKeys } : {}) }), pool: ratchetKeyPool('b', inp.he), used: 0, nonces: 0 },
  };
  const steps: Json[] = [];
  const sent = new Map<string, { from: 'a' | 'b'; message: Uint8Array; plaintext: Uint8Array; n: number; pn: number }>();
  const send = (from: 'a' | 'b', label: string): void => {
    const s = sides[from];
    const plaintext = te.encode(label);
    const nonce = headerNonce(from, s.nonces++);
    const n = s.state.ns;
    const pn = s.state.pn;
    const [mk] = kdfCk(s.state.cks!);
    const dhsPub = s.state.dhsPub;
    const r = ratchetEncrypt(s.state, plaintext, T0, { headerNonce: nonce });
    s.state = r.state;
    sent.set(label, { from, message: r.message, plaintext, n, pn });
    const { key, nonce: aeadNonce } = msgKeys(mk);
    steps.push({ op: 'send', from, label, n, pn, dhs_pub: hex(dhsPub), ...(inp.he ? { header_nonce: hex(nonce) } : {}), mk: hex(mk), key: hex(key), nonce: hex(aeadNonce), plaintext: hex(plaintext), message: hex(r.message) });
  };
  const deliver = (label: string, expect = 'ok', commit = true): void => {
    const m = sent.get(label)!;
    const to = m.from === 'a' ? 'b' : 'a';
    const s = sides[to];
    const next = s.pool[s.used]!;
    const before = s.state.dhsPub;
    let outcome = 'ok';
    let usedKey: Uint8Array | undefined;
    try {
      const r = ratchetDecrypt(s.state, m.message, T0, { dhsSk: next });
      if (hex(r.content) !== hex(m.plaintext)) throw new Error(`ratchet script: ${label} decrypted wrongly`);
      if (hex(r.state.dhsPub) !== hex(before)) usedKey = next;
      if (commit) {
        s.state = r.state;
        if (usedKey) s.used++;
      }
    } catch (err) {
      if (!(err instanceof CryptoError)) throw err;
      outcome = err.code;
    }
    if (outcome !== expect) throw new Error(`ratchet script: ${label} gave ${outcome}, expected ${expect}`);
    steps.push({ op: 'deliver', to, label, ...(usedKey ? { new_dhs_sk: hex(usedKey) } : {}), outcome, committed: commit && outcome === 'ok' });
  };

  send('a', 'A0: first message');
  deliver('A0: first message');
  for (let i = 1; i <= 5; i++) send('b', `B${i}`);
  for (let i = 1; i <= 5; i++) deliver(`B${i}`);
  for (let i = 1; i <= 5; i++) send('a', `A${i}`);
  for (let i = 1; i <= 5; i++) deliver(`A${i}`);
  for (let i = 0; i < 3; i++) send('b', `O${i}`);
  deliver('O2');
  deliver('O0');
  deliver('O1');
  deliver('O1', 'REPLAY', false);
  // Skip bounds on A's new sending chain: after S0 the receiver's Nr is 1.
  const skipLabels = ['S0', 'S1', 'S2001', 'S2002'];
  const s = sides.a;
  for (let n = 0; n <= 2002; n++) {
    const label = n === 0 || n === 1 || n === 2001 || n === 2002 ? `S${n}` : '';
    if (label) send('a', label);
    else s.state = ratchetEncrypt(s.state, te.encode(`filler ${n}`), T0, { headerNonce: headerNonce('a', s.nonces++) }).state;
  }
  void skipLabels;
  deliver('S0');
  deliver('S2002', 'TOO_MANY_SKIPPED', false);
  deliver('S2001');
  deliver('S1');
  deliver('S1', 'REPLAY', false);
  deliver('S2001', 'REPLAY', false);
  return {
    inputs: {
      he: inp.he,
      rk0: hex(inp.rk0),
      spk_b_sk: hex(inp.spkSk),
      spk_b: hex(pub(inp.spkSk)),
      ...(inp.he ? { hk_a: hex(inp.hkA), hk_b: hex(inp.hkB) } : {}),
      addr_a: hex(inp.addrA),
      addr_b: hex(inp.addrB),
      alice_dhs0_sk: hex(inp.aliceDhs0),
      now: T0,
    },
    steps,
  };
}

export function ratchetInputs(he: boolean): RatchetScriptInputs {
  const a = parseDeviceCertificate(fixedDevice('a1', 'a', 1, DEVICE_FLAG_AIK_HOLDER).certBytes);
  const b = parseDeviceCertificate(fixedDevice('b1', 'b', 7, DEVICE_FLAG_AIK_HOLDER).certBytes);
  return { he, rk0: fixedBytes('rk0', 32), spkSk: fixedSk('spk-b1'), hkA: fixedBytes('hk-a', 32), hkB: fixedBytes('hk-b', 32), addrA: addr(a), addrB: addr(b), aliceDhs0: fixedSk('ratchet-a-init') };
}

function ratchet(): Obj {
  const ck = fixedBytes('ck', 32);
  const rk = fixedBytes('rk', 32);
  const dh = ecdh(fixedSk('ecdh-a'), pub(fixedSk('ecdh-c')));
  const [rk2, ck2, nhk] = kdfRk(rk, dh);
  const [mk, ckNext] = kdfCk(ck);
  const mks = msgKeys(mk);
  return {
    description:
      'PROTOCOL.md §4 Double Ratchet scripts. Both sides start from the inputs (Alice: initInitiator with alice_dhs0_sk; Bob: initResponder with SPK_B). ' +
      '"send" steps give the sender’s chain values and the exact RatchetMessage; "deliver" steps give the outcome at the receiver, the ratchet key it generates ' +
      'when the message starts a DH ratchet step (new_dhs_sk), and whether the resulting state is kept (rejected deliveries, and probes, leave it unchanged). ' +
      'Header nonces are fixed: ASCII("A" or "B") ‖ 0x00×7 ‖ u32 counter.',
    kdf: {
      kdf_rk: { rk: hex(rk), dh: hex(dh), rk_next: hex(rk2), ck: hex(ck2), nhk: hex(nhk) },
      kdf_ck: { ck: hex(ck), mk: hex(mk), ck_next: hex(ckNext) },
      msg_keys: { mk: hex(mk), key: hex(mks.key), nonce: hex(mks.nonce) },
    },
    plain_headers: ratchetScript(ratchetInputs(false)),
    header_encryption: ratchetScript(ratchetInputs(true)),
  };
}

// ---------------------------------------------------------------------------------------------
// 5. Sender keys

export function senderKeyInputs(): { gid: Uint8Array; epoch: number; chainId: number; ck: Uint8Array; ssk: Uint8Array; sender: Uint8Array } {
  return { gid: fixedBytes('group-id', 32), epoch: 4, chainId: 0x0a0b0c0d, ck: fixedBytes('sender-ck', 32), ssk: fixedSk('sender-ssk'), sender: addr(parseDeviceCertificate(fixedDevice('a1', 'a', 1, DEVICE_FLAG_AIK_HOLDER).certBytes)) };
}

function senderKeys(): Obj {
  const inp = senderKeyInputs();
  let chain: SenderChain = newSenderChain(inp.gid, inp.epoch, T0, { ssk: inp.ssk, chainId: inp.chainId, ck: inp.ck });
  const skdm = skdmOf(chain);
  const messages: Json[] = [];
  const wire = new Map<number, Uint8Array>();
  for (let it = 0; it <= 3001; it++) {
    const want = it === 0 || it === 1 || it === 1000 || it === 3001;
    const plaintext = te.encode(`group message ${it}`);
    const [mk] = kdfCk(chain.ck);
    const r = senderKeyEncrypt(chain, inp.sender, plaintext, AUX);
    chain = r.chain;
    if (!want) continue;
    wire.set(it, r.message);
    const o = hkdf({ salt: new Uint8Array(32), ikm: mk, info: ascii('umbra/v1/skmk'), length: 44 });
    messages.push({ it, mk: hex(mk), key: hex(o.subarray(0, 32)), nonce: hex(o.subarray(32)), plaintext: hex(plaintext), message: hex(r.message) });
  }
  // Receiver script from the SKDM: 0, 1, 1000 in order, then the negatives.
  let rx = chainFromSkdm(skdm, T0);
  const script: Json[] = [];
  const deliver = (it: number, bytesIn: Uint8Array, expect: string, commit: boolean, name: string, sender = inp.sender) => {
    let outcome = 'ok';
    try {
      const r = senderKeyDecrypt(rx, sender, parseSenderKeyMessage(bytesIn));
      if (commit) rx = r.chain;
    } catch (err) {
      if (!(err instanceof CryptoError)) throw err;
      outcome = err.code;
    }
    if (outcome !== expect) throw new Error(`sender keys: ${name} gave ${outcome}`);
    script.push({ name, it, message: hex(bytesIn), ...(sender !== inp.sender ? { sender: hex(sender) } : {}), outcome, committed: commit && outcome === 'ok' });
  };
  deliver(0, wire.get(0)!, 'ok', true, 'it 0');
  deliver(1, flip(wire.get(1)!, -1), 'BAD_SIGNATURE', false, 'it 1 with a flipped signature bit');
  deliver(1, flip(wire.get(1)!, 60), 'BAD_SIGNATURE', false, 'it 1 with a flipped ciphertext bit');
  deliver(1, wire.get(1)!, 'DECRYPT_FAILED', false, 'it 1 with another Addr(sender) in the AD', new Uint8Array(68).fill(0x55));
  deliver(1, wire.get(1)!, 'ok', true, 'it 1');
  deliver(1, wire.get(1)!, 'REPLAY', false, 'it 1 again (replay)');
  deliver(3001, wire.get(3001)!, 'TOO_MANY_SKIPPED', false, 'it 3001: jump of 2999 > 2000');
  deliver(1000, wire.get(1000)!, 'ok', true, 'it 1000 (jump of 998)');
  deliver(0, flip(wire.get(0)!, 0, 0x03), 'UNSUPPORTED_VERSION', false, 'version 2');
  return {
    description: 'PROTOCOL.md §6 sender keys: a chain from fixed ssk, chain_id, ck; SKDM at it = 0; messages at it = 0, 1, 1000 (and 3001 for the jump bound); aux = 0x00×32.',
    inputs: { gid: hex(inp.gid), epoch: inp.epoch, chain_id: inp.chainId, ck: hex(inp.ck), ssk: hex(inp.ssk), sig_pk: hex(pub(inp.ssk)), sender_addr: hex(inp.sender) },
    skdm: { ...skdm, content: new TextDecoder().decode(encodeContent({ v: 1, id: b64uEncode(fixedBytes('skdm-id', 16)), ts: T0, k: 'skdm', ...skdm })) },
    messages,
    receiver_script: script,
  };
}

// ---------------------------------------------------------------------------------------------
// 6. Envelope / Content

function envelopeContent(): Obj {
  const id = b64uEncode(fixedBytes('content-id', 16));
  const contents: { name: string; c: Content; readAt?: number }[] = [
    { name: 'text, no timer', c: { v: 1, id, ts: T0, k: 'text', text: 'hi' } },
    { name: 'text, send-mode timer 1 h', c: { v: 1, id, ts: T0, k: 'text', text: 'hi', exp: { t: 3600, m: 'send' } } },
    { name: 'text, read-mode timer 30 s, read report 10 s after ts', c: { v: 1, id, ts: T0, k: 'text', text: 'hi', exp: { t: 30, m: 'read' } }, readAt: T0 + 10_000 },
    { name: 'text, read-mode timer 2^32−1 s, read report 1 day after ts (bound stays expires_at)', c: { v: 1, id, ts: T0, k: 'text', text: 'hi', exp: { t: 0xffff_ffff, m: 'read' } }, readAt: T0 + 86_400_000 },
    { name: 'exp_set control message', c: { v: 1, id, ts: T0, k: 'exp_set', t: 604800, m: 'send' } },
  ];
  const encodings = contents.map(({ name, c, readAt }) => {
    const enc = encodeContent(c);
    const e = envelopeExpiry(c);
    return { name, content_json: new TextDecoder().decode(enc), content: hex(enc), padded: hex(pad(enc)), expires_at: e.expiresAt, read_ttl_s: e.readTtlS, ...(readAt !== undefined ? { read_at: readAt, expires_at_after_read: expiryAfterRead(e.expiresAt, e.readTtlS, readAt) } : {}) };
  });
  const padding = [0, 254, 255, 256].map((n) => {
    const x = fixedBytes(`pad-${n}`, n);
    return { length: n, input: hex(x), padded: hex(pad(x)), padded_length: pad(x).length };
  });
  const ok = pad(fixedBytes('pad-10', 10));
  const unpadNeg = [
    neg('valid', 'unpad', { padded: hex(ok) }, 'ok'),
    neg('all zero (no 0x80 marker)', 'unpad', { padded: hex(new Uint8Array(256)) }, 'DECRYPT_FAILED'),
    neg('length 255 (not a multiple of 256)', 'unpad', { padded: hex(ok.subarray(0, 255)) }, 'DECRYPT_FAILED'),
    neg('empty', 'unpad', { padded: '' }, 'DECRYPT_FAILED'),
    neg('non-zero byte after the marker', 'unpad', { padded: hex(flip(ok, 255)) }, 'DECRYPT_FAILED'),
    neg('marker 0x81', 'unpad', { padded: hex(flip(ok, 10)) }, 'DECRYPT_FAILED'),
  ];
  return {
    description:
      'PROTOCOL.md §7–8: Content encodings (UTF-8 JSON as produced by encodeContent) with the Envelope expiry fields they imply (expires_at ms, read_ttl_s s) ' +
      'and, for read mode, the expiry after a read report at read_at: min(expires_at, read_at + 1000·read_ttl_s); pad/unpad at 0/254/255/256 bytes. ' +
      'The binary Envelope and sealed sender are not implemented in libs/crypto yet, so they have no vectors here.',
    t0: T0,
    content: encodings,
    padding,
    unpad_negatives: unpadNeg,
  };
}

// ---------------------------------------------------------------------------------------------
// 9. Safety numbers

function safetyNumbers(): Obj {
  const aikA = pub(fixedSk('aik-a'));
  const aikB = pub(fixedSk('aik-b'));
  const ab = safetyNumber(aikA, aikB);
  const ba = safetyNumber(aikB, aikA);
  const fp = (aik: Uint8Array) => {
    const key = concatBytes(u16(SUITE_V1), aik);
    return hex(sha512Iter(concatBytes(u16(1), key, accountIdOf(aik), key), key));
  };
  return {
    description: 'PROTOCOL.md §11: fingerprints h (5200 SHA-512 calls), the 60-digit safety number and both QR payloads.',
    aik_a: hex(aikA),
    aik_b: hex(aikB),
    account_id_a: hex(accountIdOf(aikA)),
    account_id_b: hex(accountIdOf(aikB)),
    h_a: fp(aikA),
    h_b: fp(aikB),
    digits: ab.digits,
    groups: ab.groups,
    qr_a: ab.qr,
    qr_b: ba.qr,
    negatives: [
      neg('A scans B', 'safety_qr', { ours: ab.qr, scanned: ba.qr }, 'ok'),
      neg('A scans its own QR', 'safety_qr', { ours: ab.qr, scanned: ab.qr }, 'false'),
      neg('QR of another pair', 'safety_qr', { ours: ab.qr, scanned: safetyNumber(pub(fixedSk('aik-c')), aikA).qr }, 'false'),
      neg('truncated QR', 'safety_qr', { ours: ab.qr, scanned: ba.qr.slice(0, -4) }, 'false'),
      neg('QR with characters outside base64url', 'safety_qr', { ours: ab.qr, scanned: `${ba.qr.slice(0, -1)}*` }, 'false'),
    ],
  };
}

function sha512Iter(first: Uint8Array, key: Uint8Array): Uint8Array {
  let h = sha512(first);
  for (let i = 1; i < 5200; i++) h = sha512(concatBytes(h, key));
  return h;
}

/** All vector files, by file name. */
// ---------------------------------------------------------------------------------------------
// 8. Key transparency: the RFC 6962 tree over the Certificate Transparency eight-leaf data set

const CT_LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'];

function ktMerkle(): Obj {
  const data = CT_LEAVES.map((l) => hexDecode(l));
  const roots = Array.from({ length: 9 }, (_v, n) => hexEncode(merkleRoot(data.slice(0, n))));
  const inclusion: Obj[] = [];
  const consistency: Obj[] = [];
  for (let n = 1; n <= 8; n++) {
    const tree = data.slice(0, n);
    for (let m = 0; m < n; m++) {
      inclusion.push(neg(`inclusion ${m} of ${n}`, 'merkle_inclusion', { leaf_hash: hexEncode(merkleLeafHash(data[m]!)), index: m, size: n, path: inclusionProof(m, tree).map(hexEncode), root: roots[n]! }, 'ok'));
    }
    for (let m = 1; m <= n; m++) {
      consistency.push(neg(`consistency ${m} → ${n}`, 'merkle_consistency', { size1: m, size2: n, root1: roots[m]!, root2: roots[n]!, proof: consistencyProof(m, tree).map(hexEncode) }, 'ok'));
    }
  }
  const inc = inclusionProof(2, data.slice(0, 7)).map(hexEncode);
  const con = consistencyProof(3, data).map(hexEncode);
  const base = { leaf_hash: hexEncode(merkleLeafHash(data[2]!)), index: 2, size: 7, path: inc, root: roots[7]! };
  const negatives = [
    neg('inclusion: path element flipped', 'merkle_inclusion', { ...base, path: [hexEncode(flip(hexDecode(inc[0]!), 0)), ...inc.slice(1)] }, 'false'),
    neg('inclusion: wrong index', 'merkle_inclusion', { ...base, index: 3 }, 'false'),
    neg('inclusion: wrong tree size', 'merkle_inclusion', { ...base, size: 4 }, 'false'),
    neg('inclusion: index outside the tree', 'merkle_inclusion', { ...base, index: 7 }, 'false'),
    neg('inclusion: path too short', 'merkle_inclusion', { ...base, path: inc.slice(1) }, 'false'),
    neg('inclusion: path too long', 'merkle_inclusion', { ...base, path: [...inc, roots[1]!] }, 'false'),
    neg('inclusion: other root', 'merkle_inclusion', { ...base, root: roots[8]! }, 'false'),
    neg('consistency: proof element flipped', 'merkle_consistency', { size1: 3, size2: 8, root1: roots[3]!, root2: roots[8]!, proof: [hexEncode(flip(hexDecode(con[0]!), 0)), ...con.slice(1)] }, 'false'),
    neg('consistency: other old root (a fork)', 'merkle_consistency', { size1: 3, size2: 8, root1: roots[4]!, root2: roots[8]!, proof: con }, 'false'),
    neg('consistency: other new root', 'merkle_consistency', { size1: 3, size2: 8, root1: roots[3]!, root2: roots[7]!, proof: con }, 'false'),
    neg('consistency: empty proof', 'merkle_consistency', { size1: 3, size2: 8, root1: roots[3]!, root2: roots[8]!, proof: [] }, 'false'),
    neg('consistency: shrinking tree', 'merkle_consistency', { size1: 8, size2: 3, root1: roots[8]!, root2: roots[3]!, proof: con }, 'false'),
    neg('consistency: same size, different roots', 'merkle_consistency', { size1: 5, size2: 5, root1: roots[5]!, root2: roots[6]!, proof: [] }, 'false'),
  ];
  // A KTLeaf for a device list, and the signed, cosigned tree head over the eight leaves.
  const aik = pub(fixedSk('kt-aik'));
  const leaf = encodeKtLeaf({ type: 1, label: accountIdOf(aik), version: 3, logTime: T0, valueHash: sha256(fixedBytes('kt-device-list', 200)) });
  const logSk = fixedSk('kt-log');
  const witnessSk = fixedSk('kt-witness-1');
  const otherSk = fixedSk('kt-witness-2');
  const logPk = pub(logSk);
  const witnessPk = pub(witnessSk);
  const sth = cosignSth(createSth(logSk, { logPk, treeSize: 8, timestamp: T0, root: hexDecode(roots[8]!) }, AUX), witnessSk, witnessPk, T0 + 1000, AUX);
  const unpinned = cosignSth(createSth(logSk, { logPk, treeSize: 8, timestamp: T0, root: hexDecode(roots[8]!) }, AUX), otherSk, pub(otherSk), T0 + 1000, AUX);
  const pins = { log_pk: hexEncode(logPk), witness_pks: [hexEncode(witnessPk)], min_cosigners: 1, now: T0 + 60_000 };
  const sthCases = [
    neg('sth: signed and cosigned', 'sth', { bytes: hexEncode(sth.bytes), ...pins }, 'ok'),
    neg('sth: log signature flipped', 'sth', { bytes: hexEncode(flip(sth.bytes, 81 + 10)), ...pins }, 'BAD_SIGNATURE'),
    neg('sth: root changed', 'sth', { bytes: hexEncode(flip(sth.bytes, 60)), ...pins }, 'BAD_SIGNATURE'),
    neg('sth: cosignature flipped', 'sth', { bytes: hexEncode(flip(sth.bytes, sth.bytes.length - 1)), ...pins }, 'BAD_SIGNATURE'),
    neg('sth: another log', 'sth', { bytes: hexEncode(sth.bytes), ...pins, log_pk: hexEncode(witnessPk) }, 'BAD_SIGNATURE'),
    neg('sth: cosigned by an unpinned witness only', 'sth', { bytes: hexEncode(unpinned.bytes), ...pins }, 'BAD_SIGNATURE'),
    neg('sth: two cosignatures required', 'sth', { bytes: hexEncode(sth.bytes), ...pins, min_cosigners: 2 }, 'BAD_SIGNATURE'),
    neg('sth: older than 24 h', 'sth', { bytes: hexEncode(sth.bytes), ...pins, now: T0 + 24 * 3600 * 1000 + 1 }, 'STALE'),
    neg('sth: truncated', 'sth', { bytes: hexEncode(sth.bytes.slice(0, sth.bytes.length - 1)), ...pins }, 'MALFORMED'),
  ];
  const leafCases = [
    neg('kt leaf: device list', 'kt_leaf', { bytes: hexEncode(leaf) }, 'ok'),
    neg('kt leaf: unknown type', 'kt_leaf', { bytes: hexEncode(Uint8Array.from(leaf, (b, i) => (i === 1 ? 3 : b))) }, 'MALFORMED'),
    neg('kt leaf: version 2', 'kt_leaf', { bytes: hexEncode(Uint8Array.from(leaf, (b, i) => (i === 0 ? 2 : b))) }, 'UNSUPPORTED_VERSION'),
    neg('kt leaf: trailing byte', 'kt_leaf', { bytes: hexEncode(concatBytes(leaf, u8(0))) }, 'MALFORMED'),
  ];
  return {
    description: 'RFC 6962 Merkle tree (PROTOCOL.md §12): leaf = SHA256(0x00 || data), node = SHA256(0x01 || L || R). Roots of the first n CT leaves for n = 0..8, every inclusion proof and every consistency proof (RFC 9162 verification), and negatives.',
    leaves: CT_LEAVES,
    roots,
    inclusion,
    consistency,
    negatives,
    kt_leaf: { aik: hexEncode(aik), bytes: hexEncode(leaf), cases: leafCases },
    sth: { log_sk: hexEncode(logSk), witness_sk: hexEncode(witnessSk), aux: hexEncode(AUX), root: roots[8]!, tree_size: 8, timestamp: T0, cosigned_at: T0 + 1000, bytes: hexEncode(sth.bytes), cases: sthCases },
  };
}

export function generateVectors(): Record<string, Obj> {
  return {
    'primitives.json': primitives(),
    'identity.json': identity(),
    'pqxdh.json': pqxdh(),
    'ratchet.json': ratchet(),
    'sender-keys.json': senderKeys(),
    'envelope-content.json': envelopeContent(),
    'safety-numbers.json': safetyNumbers(),
    'kt-merkle.json': ktMerkle(),
  };
}

/** The text written to each file (stable key order, two-space indent, final newline). */
export function renderVectorFile(v: Obj): string {
  return `${JSON.stringify(v, null, 1)}\n`;
}

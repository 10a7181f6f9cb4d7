import { ByteReader, bytesEqual, concatBytes, hexEncode, u64, u8 } from './bytes';
import { CryptoError } from './errors';
import { sha256, sign, verify } from './primitives';

/** Key-transparency structures of PROTOCOL.md §12 (the log's Merkle tree is in merkle.ts). */

export const KT_LEAF_BYTES = 82;
export const TREE_HEAD_TBS_BYTES = 81;
export const KtLeafType = { DeviceList: 1, HandleBinding: 2 } as const;

export interface KtLeaf {
  type: 1 | 2;
  label: Uint8Array;
  version: number;
  logTime: number;
  valueHash: Uint8Array;
}

function u64Checked(v: number, what: string): Uint8Array {
  if (!Number.isSafeInteger(v) || v < 0) throw new CryptoError('MALFORMED', `${what} must be a non-negative integer`);
  return u64(v);
}

function fixed32(b: Uint8Array, what: string): Uint8Array {
  if (!(b instanceof Uint8Array) || b.length !== 32) throw new CryptoError('MALFORMED', `${what} must be 32 bytes`);
  return b;
}

/** KTLeaf = u8 1 ‖ u8 type ‖ label[32] ‖ u64 version ‖ u64 log_time ‖ value_hash[32] (82 bytes). */
export function encodeKtLeaf(l: KtLeaf): Uint8Array {
  if (l.type !== 1 && l.type !== 2) throw new CryptoError('MALFORMED', 'KTLeaf type must be 1 or 2');
  return concatBytes(u8(1), u8(l.type), fixed32(l.label, 'label'), u64Checked(l.version, 'version'), u64Checked(l.logTime, 'log_time'), fixed32(l.valueHash, 'value_hash'));
}

export function parseKtLeaf(bytes: Uint8Array): KtLeaf {
  const r = new ByteReader(bytes);
  if (r.u8() !== 1) throw new CryptoError('UNSUPPORTED_VERSION', 'KTLeaf version');
  const type = r.u8();
  if (type !== 1 && type !== 2) throw new CryptoError('MALFORMED', 'KTLeaf type');
  const leaf: KtLeaf = { type, label: r.fixed(32), version: r.u64n(), logTime: r.u64n(), valueHash: r.fixed(32) };
  r.end();
  return leaf;
}

export interface TreeHead {
  logId: Uint8Array;
  treeSize: number;
  timestamp: number;
  root: Uint8Array;
}

export interface Cosignature {
  witnessId: Uint8Array;
  t: number;
  signature: Uint8Array;
}

export interface SignedTreeHead {
  head: TreeHead;
  tbs: Uint8Array;
  signature: Uint8Array;
  cosignatures: Cosignature[];
  bytes: Uint8Array;
}

/** log_id = SHA256(log public key); witness_id = SHA256(witness public key). */
export function ktKeyId(publicKey: Uint8Array): Uint8Array {
  return sha256(fixed32(publicKey, 'public key'));
}

/** TreeHeadTBS = u8 1 ‖ log_id[32] ‖ u64 tree_size ‖ u64 timestamp ‖ root[32] (81 bytes). */
export function encodeTreeHeadTbs(h: TreeHead): Uint8Array {
  return concatBytes(u8(1), fixed32(h.logId, 'log_id'), u64Checked(h.treeSize, 'tree_size'), u64Checked(h.timestamp, 'timestamp'), fixed32(h.root, 'root'));
}

function encodeSth(tbs: Uint8Array, signature: Uint8Array, cosignatures: Cosignature[]): Uint8Array {
  if (cosignatures.length > 255) throw new CryptoError('MALFORMED', 'at most 255 cosignatures');
  return concatBytes(tbs, signature, u8(cosignatures.length), ...cosignatures.map((c) => concatBytes(fixed32(c.witnessId, 'witness_id'), u64Checked(c.t, 't'), c.signature)));
}

/** The log signs a tree head: STH without cosignatures. `aux` fixes BIP340's randomness (test vectors only). */
export function createSth(logSk: Uint8Array, head: Omit<TreeHead, 'logId'> & { logPk: Uint8Array }, aux?: Uint8Array): SignedTreeHead {
  const full: TreeHead = { logId: ktKeyId(head.logPk), treeSize: head.treeSize, timestamp: head.timestamp, root: head.root };
  const tbs = encodeTreeHeadTbs(full);
  const signature = sign(logSk, 'kt-sth', tbs, aux);
  return { head: full, tbs, signature, cosignatures: [], bytes: encodeSth(tbs, signature, []) };
}

/** A witness adds its cosignature over TreeHeadTBS ‖ u64 t (after checking consistency itself). */
export function cosignSth(sth: SignedTreeHead, witnessSk: Uint8Array, witnessPk: Uint8Array, t: number, aux?: Uint8Array): SignedTreeHead {
  const c: Cosignature = { witnessId: ktKeyId(witnessPk), t, signature: sign(witnessSk, 'kt-witness', concatBytes(sth.tbs, u64Checked(t, 't')), aux) };
  const cosignatures = [...sth.cosignatures, c];
  return { ...sth, cosignatures, bytes: encodeSth(sth.tbs, sth.signature, cosignatures) };
}

export function parseSth(bytes: Uint8Array): SignedTreeHead {
  const r = new ByteReader(bytes);
  const tbs = r.fixed(TREE_HEAD_TBS_BYTES);
  const t = new ByteReader(tbs);
  if (t.u8() !== 1) throw new CryptoError('UNSUPPORTED_VERSION', 'TreeHeadTBS version');
  const head: TreeHead = { logId: t.fixed(32), treeSize: t.u64n(), timestamp: t.u64n(), root: t.fixed(32) };
  const signature = r.fixed(64);
  const n = r.u8();
  const cosignatures: Cosignature[] = [];
  for (let i = 0; i < n; i++) cosignatures.push({ witnessId: r.fixed(32), t: r.u64n(), signature: r.fixed(64) });
  r.end();
  return { head, tbs, signature, cosignatures, bytes: new Uint8Array(bytes) };
}

/**
 * §12 client checks (1) and (2): the log's signature under the pinned key, at least `minCosigners`
 * valid cosignatures from pinned witnesses (each witness counted once), and an STH no older than
 * `maxAgeMs` (default 24 h). Throws CryptoError; returns the parsed STH.
 */
export function verifySth(
  bytes: Uint8Array,
  pins: { logPk: Uint8Array; witnessPks: Uint8Array[]; minCosigners?: number },
  now: number,
  maxAgeMs = 24 * 3600 * 1000,
): SignedTreeHead {
  const sth = parseSth(bytes);
  if (!bytesEqual(sth.head.logId, ktKeyId(pins.logPk))) throw new CryptoError('BAD_SIGNATURE', 'STH from another log');
  if (!verify(pins.logPk, 'kt-sth', sth.tbs, sth.signature)) throw new CryptoError('BAD_SIGNATURE', 'STH log signature');
  const counted = new Set<string>();
  for (const c of sth.cosignatures) {
    const pk = pins.witnessPks.find((w) => bytesEqual(ktKeyId(w), c.witnessId));
    if (!pk || counted.has(hexEncode(pk))) continue;
    if (verify(pk, 'kt-witness', concatBytes(sth.tbs, u64(c.t)), c.signature)) counted.add(hexEncode(pk));
  }
  if (counted.size < (pins.minCosigners ?? 1)) throw new CryptoError('BAD_SIGNATURE', `STH has ${counted.size} valid pinned cosignatures, ${pins.minCosigners ?? 1} required`);
  if (now - sth.head.timestamp > maxAgeMs) throw new CryptoError('STALE', 'STH older than allowed');
  return sth;
}

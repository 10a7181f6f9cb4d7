import { ByteReader, bytesEqual, concatBytes, hexEncode, u32, u64, u8 } from './bytes';
import { CryptoError } from './errors';
import { canonicalHandle } from './identity';
import { ascii, sha256, sign, taggedHash, verify } from './primitives';

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
  const sth = readSth(r);
  r.end();
  return sth;
}

/** Reads one STH from `r` (it may be followed by other fields, as inside a LookupResult). */
function readSth(r: ByteReader): SignedTreeHead {
  const start = r.position;
  const tbs = r.fixed(TREE_HEAD_TBS_BYTES);
  const t = new ByteReader(tbs);
  if (t.u8() !== 1) throw new CryptoError('UNSUPPORTED_VERSION', 'TreeHeadTBS version');
  const head: TreeHead = { logId: t.fixed(32), treeSize: t.u64n(), timestamp: t.u64n(), root: t.fixed(32) };
  const signature = r.fixed(64);
  const n = r.u8();
  const cosignatures: Cosignature[] = [];
  for (let i = 0; i < n; i++) cosignatures.push({ witnessId: r.fixed(32), t: r.u64n(), signature: r.fixed(64) });
  return { head, tbs, signature, cosignatures, bytes: r.range(start, r.position) };
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

/** Cosignature triple of §12: witness_id[32] ‖ u64 t ‖ Sign(w_sk, "kt-witness", TreeHeadTBS ‖ u64 t) (104 bytes). */
export const COSIGNATURE_BYTES = 104;

export function encodeCosignature(c: Cosignature): Uint8Array {
  if (!(c.signature instanceof Uint8Array) || c.signature.length !== 64) throw new CryptoError('MALFORMED', 'cosignature signature must be 64 bytes');
  return concatBytes(fixed32(c.witnessId, 'witness_id'), u64Checked(c.t, 't'), c.signature);
}

export function parseCosignature(bytes: Uint8Array): Cosignature {
  const r = new ByteReader(bytes);
  const c: Cosignature = { witnessId: r.fixed(32), t: r.u64n(), signature: r.fixed(64) };
  r.end();
  return c;
}

/** Does `c` carry a valid signature of the witness `witnessPk` over this tree head? (The log checks each one it collects.) */
export function verifyCosignature(tbs: Uint8Array, c: Cosignature, witnessPk: Uint8Array): boolean {
  if (!bytesEqual(c.witnessId, ktKeyId(witnessPk))) return false;
  if (!Number.isSafeInteger(c.t) || c.t < 0) return false;
  return verify(witnessPk, 'kt-witness', concatBytes(tbs, u64(c.t)), c.signature);
}

/** Witness side: the cosignature over `tbs` at time `t`. */
export function createCosignature(tbs: Uint8Array, witnessSk: Uint8Array, witnessPk: Uint8Array, t: number, aux?: Uint8Array): Cosignature {
  if (!(tbs instanceof Uint8Array) || tbs.length !== TREE_HEAD_TBS_BYTES) throw new CryptoError('MALFORMED', 'TreeHeadTBS must be 81 bytes');
  return { witnessId: ktKeyId(witnessPk), t, signature: sign(witnessSk, 'kt-witness', concatBytes(tbs, u64Checked(t, 't')), aux) };
}

/** The STH with these cosignatures in place of the ones it carried (the log attaches what its witnesses returned). */
export function withCosignatures(sth: SignedTreeHead, cosignatures: Cosignature[]): SignedTreeHead {
  return { ...sth, cosignatures: [...cosignatures], bytes: encodeSth(sth.tbs, sth.signature, cosignatures) };
}

/** The log's own signature over the STH (no cosignature check; the witness uses it). */
export function verifySthLogSignature(sth: SignedTreeHead, logPk: Uint8Array): boolean {
  return bytesEqual(sth.head.logId, ktKeyId(logPk)) && verify(logPk, 'kt-sth', sth.tbs, sth.signature);
}

const MAX_PROOF_HASHES = 255;

function encodeHashes(hashes: Uint8Array[], what: string): Uint8Array {
  if (hashes.length > MAX_PROOF_HASHES) throw new CryptoError('MALFORMED', `${what}: at most 255 hashes`);
  return concatBytes(u8(hashes.length), ...hashes.map((h) => fixed32(h, what)));
}

function readHashes(r: ByteReader): Uint8Array[] {
  const n = r.u8();
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) out.push(r.fixed(32));
  return out;
}

/** ConsistencyProof = u64 first_size ‖ u64 second_size ‖ u8 len ‖ len × hash[32] (RFC 9162 §2.1.4). */
export interface ConsistencyProof {
  firstSize: number;
  secondSize: number;
  path: Uint8Array[];
}

export function encodeConsistencyProof(p: ConsistencyProof): Uint8Array {
  if (p.firstSize > p.secondSize) throw new CryptoError('MALFORMED', 'first_size above second_size');
  return concatBytes(u64Checked(p.firstSize, 'first_size'), u64Checked(p.secondSize, 'second_size'), encodeHashes(p.path, 'consistency path'));
}

export function parseConsistencyProof(bytes: Uint8Array): ConsistencyProof {
  const r = new ByteReader(bytes);
  const firstSize = r.u64n();
  const secondSize = r.u64n();
  if (firstSize > secondSize) throw new CryptoError('MALFORMED', 'first_size above second_size');
  const path = readHashes(r);
  r.end();
  return { firstSize, secondSize, path };
}

/** kt-lookup TBS = log_id[32] ‖ label[32] ‖ u8 type ‖ u64 leaf_index ‖ u64 tree_size ‖ root[32] (113 bytes). */
export function encodeKtLookupTbs(x: { logId: Uint8Array; label: Uint8Array; type: 1 | 2; leafIndex: number; treeSize: number; root: Uint8Array }): Uint8Array {
  if (x.type !== 1 && x.type !== 2) throw new CryptoError('MALFORMED', 'lookup type must be 1 or 2');
  return concatBytes(fixed32(x.logId, 'log_id'), fixed32(x.label, 'label'), u8(x.type), u64Checked(x.leafIndex, 'leaf_index'), u64Checked(x.treeSize, 'tree_size'), fixed32(x.root, 'root'));
}

/**
 * LookupResult = leaf[82] ‖ u64 leaf_index ‖ STH ‖ u8 len ‖ len × hash[32] ‖ opaque statement<u32>
 *                ‖ Sign(log_sk, "kt-lookup", log_id ‖ label ‖ u8 type ‖ u64 leaf_index ‖ u64 tree_size ‖ root)
 */
export interface LookupResult {
  leaf: KtLeaf;
  leafBytes: Uint8Array;
  leafIndex: number;
  sth: SignedTreeHead;
  inclusion: Uint8Array[];
  statement: Uint8Array;
  signature: Uint8Array;
  bytes: Uint8Array;
}

/** The log builds a LookupResult: signs the lookup over the STH it carries. */
export function createLookupResult(
  logSk: Uint8Array,
  x: { leafBytes: Uint8Array; leafIndex: number; sth: SignedTreeHead; inclusion: Uint8Array[]; statement: Uint8Array },
  aux?: Uint8Array,
): LookupResult {
  const leaf = parseKtLeaf(x.leafBytes);
  if (x.leafIndex >= x.sth.head.treeSize) throw new CryptoError('MALFORMED', 'leaf_index outside the STH');
  const tbs = encodeKtLookupTbs({ logId: x.sth.head.logId, label: leaf.label, type: leaf.type, leafIndex: x.leafIndex, treeSize: x.sth.head.treeSize, root: x.sth.head.root });
  const signature = sign(logSk, 'kt-lookup', tbs, aux);
  if (x.statement.length > 0xffffffff) throw new CryptoError('MALFORMED', 'statement too long');
  const bytes = concatBytes(x.leafBytes, u64Checked(x.leafIndex, 'leaf_index'), x.sth.bytes, encodeHashes(x.inclusion, 'inclusion path'), u32(x.statement.length), x.statement, signature);
  return { leaf, leafBytes: new Uint8Array(x.leafBytes), leafIndex: x.leafIndex, sth: x.sth, inclusion: [...x.inclusion], statement: new Uint8Array(x.statement), signature, bytes };
}

export function parseLookupResult(bytes: Uint8Array): LookupResult {
  const r = new ByteReader(bytes);
  const leafBytes = r.fixed(KT_LEAF_BYTES);
  const leaf = parseKtLeaf(leafBytes);
  const leafIndex = r.u64n();
  const sth = readSth(r);
  const inclusion = readHashes(r);
  const statement = r.opaque(4);
  const signature = r.fixed(64);
  r.end();
  return { leaf, leafBytes, leafIndex, sth, inclusion, statement, signature, bytes: new Uint8Array(bytes) };
}

/** The kt-lookup signature of `res` under the log key (its tree_size and root are those of the STH it carries). */
export function verifyLookupSignature(res: LookupResult, logPk: Uint8Array): boolean {
  if (!bytesEqual(res.sth.head.logId, ktKeyId(logPk))) return false;
  const tbs = encodeKtLookupTbs({ logId: res.sth.head.logId, label: res.leaf.label, type: res.leaf.type, leafIndex: res.leafIndex, treeSize: res.sth.head.treeSize, root: res.sth.head.root });
  return verify(logPk, 'kt-lookup', tbs, res.signature);
}

/** HANDLE_BINDING label = TH("umbra/v1/kt-handle", handle) over the canonical handle's ASCII bytes. */
export function ktHandleLabel(handle: string): Uint8Array {
  return taggedHash('umbra/v1/kt-handle', ascii(canonicalHandle(handle)));
}

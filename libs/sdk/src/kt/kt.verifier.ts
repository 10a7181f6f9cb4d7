import {
  CryptoError,
  accountIdOf,
  b64uEncode,
  bytesEqual,
  concatBytes,
  hexDecode,
  hexEncode,
  ktHandleLabel,
  ktKeyId,
  merkleLeafHash,
  parseConsistencyProof,
  parseLookupResult,
  parseSignedHandleClaim,
  parseSth,
  sha256,
  u64,
  verify,
  verifyConsistency,
  verifyInclusion,
  verifyLookupSignature,
  verifySignedDeviceList,
  verifySignedHandleClaim,
  type LookupResult,
  type SignedDeviceList,
  type SignedHandleClaim,
  type SignedTreeHead,
} from '@umbra/crypto';
import { KtVerificationError } from './kt.errors';

/**
 * What a client pins for key transparency (PROTOCOL.md §12): the log's public key, the witnesses'
 * public keys and how many of them must cosign. Operators publish it out of band; the server serves
 * the same JSON at GET /v1/kt/config (trust on first use when nothing was pinned).
 */
export interface KtTrustConfig {
  /** 64 hex: the log's BIP340 public key. */
  logPublicKey: string;
  witnesses: { publicKey: string }[];
  /** Distinct pinned witnesses that must cosign every STH (k of §12). */
  quorum: number;
  /** The log's maximum merge delay (statement → leaf), informative. */
  mmdMs?: number;
  /** Oldest STH accepted (§12 check 2); 24 h by default. */
  maxSthAgeMs?: number;
}

export const KT_MAX_STH_AGE_MS = 86_400_000;

/** Parsed pins, checked once. */
export interface KtPins {
  logPk: Uint8Array;
  witnessPks: Uint8Array[];
  quorum: number;
  maxSthAgeMs: number;
}

const HEX64 = /^[0-9a-f]{64}$/;

/** Validates a trust config (from a file, an option or the server) into pins; a bad one is a plain Error. */
export function ktPins(config: KtTrustConfig): KtPins {
  if (typeof config !== 'object' || config === null) throw new Error('KT trust config must be an object');
  if (typeof config.logPublicKey !== 'string' || !HEX64.test(config.logPublicKey)) throw new Error('KT trust config: logPublicKey must be 64 lower-case hex');
  if (!Array.isArray(config.witnesses)) throw new Error('KT trust config: witnesses must be a list');
  const witnessPks = config.witnesses.map((w, i) => {
    if (typeof w?.publicKey !== 'string' || !HEX64.test(w.publicKey)) throw new Error(`KT trust config: witnesses[${i}].publicKey must be 64 lower-case hex`);
    return hexDecode(w.publicKey);
  });
  const quorum = config.quorum;
  if (!Number.isInteger(quorum) || quorum < 0 || quorum > witnessPks.length) throw new Error(`KT trust config: quorum must be an integer in 0..${witnessPks.length}`);
  const maxSthAgeMs = config.maxSthAgeMs ?? KT_MAX_STH_AGE_MS;
  if (!Number.isInteger(maxSthAgeMs) || maxSthAgeMs <= 0 || maxSthAgeMs > KT_MAX_STH_AGE_MS) throw new Error('KT trust config: maxSthAgeMs must be in 1..86400000');
  return { logPk: hexDecode(config.logPublicKey), witnessPks, quorum, maxSthAgeMs };
}

/** The tree head a client remembers (its last verified STH), for check (3). */
export interface StoredTreeHead {
  treeSize: number;
  root: Uint8Array;
  timestamp: number;
  bytes: Uint8Array;
}

/**
 * §12 checks (1) and (2): the STH is from the pinned log, signed by it, cosigned by at least `quorum`
 * distinct pinned witnesses, and no older than the allowed age.
 */
export function checkSth(bytes: Uint8Array, pins: KtPins, now: number): SignedTreeHead {
  let sth: SignedTreeHead;
  try {
    sth = parseSth(bytes);
  } catch (err) {
    throw new KtVerificationError('bad-sth-signature', `malformed STH (${(err as Error).message})`, { sth: b64uEncode(bytes) });
  }
  return checkParsedSth(sth, pins, now);
}

export function checkParsedSth(sth: SignedTreeHead, pins: KtPins, now: number): SignedTreeHead {
  const evidence = { sth: b64uEncode(sth.bytes) };
  if (!bytesEqual(sth.head.logId, ktKeyId(pins.logPk))) throw new KtVerificationError('bad-sth-signature', 'STH of another log (log_id is not the pinned key)', evidence);
  if (!verify(pins.logPk, 'kt-sth', sth.tbs, sth.signature)) throw new KtVerificationError('bad-sth-signature', "STH log signature does not verify under the pinned key", evidence);
  const counted = new Set<string>();
  for (const c of sth.cosignatures) {
    const pk = pins.witnessPks.find((w) => bytesEqual(ktKeyId(w), c.witnessId));
    if (!pk || counted.has(hexEncode(pk))) continue;
    if (verify(pk, 'kt-witness', concatBytes(sth.tbs, u64(c.t)), c.signature)) counted.add(hexEncode(pk));
  }
  if (counted.size < pins.quorum) {
    throw new KtVerificationError('insufficient-cosignatures', `STH has ${counted.size} valid cosignature(s) of pinned witnesses, ${pins.quorum} required`, evidence);
  }
  if (now - sth.head.timestamp > pins.maxSthAgeMs) {
    throw new KtVerificationError('stale-sth', `STH is ${Math.round((now - sth.head.timestamp) / 60_000)} min old (at most ${pins.maxSthAgeMs / 60_000} min)`, evidence);
  }
  return sth;
}

/**
 * §12 check (3) against the last stored STH. Returns true when `next` extends (or equals) `last`.
 * A smaller tree than one already seen is a rollback; the same size with another root, or a proof
 * that does not verify, is a fork: both are evidence and stop the lookup.
 */
export function checkConsistency(last: StoredTreeHead | undefined, next: SignedTreeHead, proofBytes: Uint8Array | undefined): void {
  if (!last || last.treeSize === 0) return;
  const evidence = { previousSth: b64uEncode(last.bytes), sth: b64uEncode(next.bytes), ...(proofBytes ? { proof: b64uEncode(proofBytes) } : {}) };
  const size = next.head.treeSize;
  if (size < last.treeSize) throw new KtVerificationError('version-rollback', `tree size ${size} is below the ${last.treeSize} already seen`, evidence);
  if (size === last.treeSize) {
    if (!bytesEqual(next.head.root, last.root)) throw new KtVerificationError('inconsistent', `two tree heads of size ${size} with different roots (fork)`, evidence);
    return;
  }
  if (!proofBytes) throw new KtVerificationError('inconsistent', 'no consistency proof', evidence);
  let ok = false;
  try {
    const p = parseConsistencyProof(proofBytes);
    ok = p.firstSize === last.treeSize && p.secondSize === size && verifyConsistency(last.treeSize, size, last.root, next.head.root, p.path);
  } catch (err) {
    if (!(err instanceof CryptoError)) throw err;
  }
  if (!ok) throw new KtVerificationError('inconsistent', `tree of size ${size} is not an append-only extension of the one of size ${last.treeSize}`, evidence);
}

export function parseLookup(bytes: Uint8Array): LookupResult {
  try {
    return parseLookupResult(bytes);
  } catch (err) {
    throw new KtVerificationError('bad-inclusion', `malformed lookup result (${(err as Error).message})`, { lookup: b64uEncode(bytes) });
  }
}

/**
 * §12 check (4) and the lookup's own parts: the log signed this lookup over the STH it carries, the
 * leaf is of the asked type and label, and the inclusion proof puts it in that tree.
 */
export function checkInclusion(res: LookupResult, pins: KtPins, expect: { type: 1 | 2; label: Uint8Array }): void {
  const evidence = { lookup: b64uEncode(res.bytes) };
  if (res.leaf.type !== expect.type || !bytesEqual(res.leaf.label, expect.label)) throw new KtVerificationError('bad-inclusion', 'the log answered for another label', evidence);
  if (!verifyLookupSignature(res, pins.logPk)) throw new KtVerificationError('bad-inclusion', 'lookup signature does not verify under the pinned log key', evidence);
  if (!verifyInclusion(merkleLeafHash(res.leafBytes), res.leafIndex, res.sth.head.treeSize, res.inclusion, res.sth.head.root)) {
    throw new KtVerificationError('bad-inclusion', `leaf ${res.leafIndex} is not in the tree of size ${res.sth.head.treeSize}`, evidence);
  }
  if (!bytesEqual(sha256(res.statement), res.leaf.valueHash)) throw new KtVerificationError('statement-mismatch', 'SHA256(statement) is not the leaf value_hash', evidence);
}

/**
 * §12 check (5) for a DEVICE_LIST leaf: a valid SignedDeviceList of the labelled account whose
 * version is the leaf's, not below the cached one.
 */
export function checkDeviceListStatement(res: LookupResult, cachedVersion: number | undefined): SignedDeviceList {
  const evidence = { lookup: b64uEncode(res.bytes) };
  let list: SignedDeviceList;
  try {
    list = verifySignedDeviceList(res.statement);
  } catch (err) {
    throw new KtVerificationError('statement-mismatch', `logged device list does not verify (${(err as Error).message})`, evidence);
  }
  if (!bytesEqual(accountIdOf(list.aik, list.suite), res.leaf.label)) throw new KtVerificationError('wrong-account', 'logged device list is signed by another account key', evidence);
  if (list.listVersion !== res.leaf.version) throw new KtVerificationError('statement-mismatch', `leaf version ${res.leaf.version} but list version ${list.listVersion}`, evidence);
  if (cachedVersion !== undefined && list.listVersion < cachedVersion) {
    throw new KtVerificationError('version-rollback', `logged device list version ${list.listVersion} is below the ${cachedVersion} already verified`, evidence);
  }
  return list;
}

/**
 * §12 check (5) for a HANDLE_BINDING leaf: a valid claim of exactly this handle, signed by the AIK
 * of the account the handle is said to belong to, version = leaf version ≥ cached.
 */
export function checkHandleStatement(res: LookupResult, handle: string, accountAik: Uint8Array, cachedVersion: number | undefined): SignedHandleClaim {
  const evidence = { lookup: b64uEncode(res.bytes) };
  let claim: SignedHandleClaim;
  try {
    claim = parseSignedHandleClaim(res.statement);
  } catch (err) {
    throw new KtVerificationError('statement-mismatch', `logged handle claim is malformed (${(err as Error).message})`, evidence);
  }
  if (claim.handle !== handle || !bytesEqual(ktHandleLabel(claim.handle), res.leaf.label)) throw new KtVerificationError('statement-mismatch', 'logged claim is for another handle', evidence);
  if (!bytesEqual(claim.accountId, accountIdOf(accountAik))) throw new KtVerificationError('wrong-account', `the log binds @${handle} to another account`, evidence);
  try {
    verifySignedHandleClaim(res.statement, accountAik);
  } catch (err) {
    throw new KtVerificationError('statement-mismatch', `logged handle claim does not verify (${(err as Error).message})`, evidence);
  }
  if (claim.claimVersion !== res.leaf.version) throw new KtVerificationError('statement-mismatch', `leaf version ${res.leaf.version} but claim version ${claim.claimVersion}`, evidence);
  if (cachedVersion !== undefined && claim.claimVersion < cachedVersion) {
    throw new KtVerificationError('version-rollback', `logged claim version ${claim.claimVersion} is below the ${cachedVersion} already verified`, evidence);
  }
  return claim;
}

/** A served claim (already matched to a logged leaf by hash) binds exactly `handle` to the account of `accountAik`. */
export function checkServedHandleClaim(bytes: Uint8Array, handle: string, accountAik: Uint8Array): SignedHandleClaim {
  const evidence = { served: b64uEncode(bytes) };
  let claim: SignedHandleClaim;
  try {
    claim = parseSignedHandleClaim(bytes);
  } catch (err) {
    throw new KtVerificationError('statement-mismatch', `served handle claim is malformed (${(err as Error).message})`, evidence);
  }
  if (claim.handle !== handle) throw new KtVerificationError('statement-mismatch', 'served claim is for another handle', evidence);
  if (!bytesEqual(claim.accountId, accountIdOf(accountAik))) throw new KtVerificationError('wrong-account', `@${handle} is bound to another account`, evidence);
  try {
    return verifySignedHandleClaim(bytes, accountAik);
  } catch (err) {
    throw new KtVerificationError('statement-mismatch', `served handle claim does not verify (${(err as Error).message})`, evidence);
  }
}

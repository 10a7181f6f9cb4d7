import { sha256 } from '@noble/hashes/sha2.js';
import { bytesEqual, concatBytes } from './bytes';
import { CryptoError } from './errors';

/**
 * RFC 6962 / RFC 9162 Merkle trees, as the key-transparency log of PROTOCOL.md §12 uses them:
 * leaf = SHA-256(0x00 ‖ data), node = SHA-256(0x01 ‖ left ‖ right), split at the largest power of two
 * below n. Proof verification follows RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2 (consistency).
 */

const LEAF = Uint8Array.of(0);
const NODE = Uint8Array.of(1);

export function merkleLeafHash(data: Uint8Array): Uint8Array {
  return sha256(concatBytes(LEAF, data));
}

function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return sha256(concatBytes(NODE, left, right));
}

/** The largest power of two strictly below n (n ≥ 2). */
function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function mth(leaves: Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return sha256(new Uint8Array(0));
  if (leaves.length === 1) return leaves[0]!;
  const k = split(leaves.length);
  return nodeHash(mth(leaves.slice(0, k)), mth(leaves.slice(k)));
}

/** MTH over the leaf data (RFC 6962 §2.1). */
export function merkleRoot(data: Uint8Array[]): Uint8Array {
  return mth(data.map(merkleLeafHash));
}

function path(m: number, leaves: Uint8Array[]): Uint8Array[] {
  if (leaves.length <= 1) return [];
  const k = split(leaves.length);
  return m < k ? [...path(m, leaves.slice(0, k)), mth(leaves.slice(k))] : [...path(m - k, leaves.slice(k)), mth(leaves.slice(0, k))];
}

/** The audit path of leaf `index` in the tree of `data` (RFC 6962 §2.1.1). */
export function inclusionProof(index: number, data: Uint8Array[]): Uint8Array[] {
  if (!Number.isInteger(index) || index < 0 || index >= data.length) throw new CryptoError('MALFORMED', 'leaf index outside the tree');
  return path(index, data.map(merkleLeafHash));
}

function subproof(m: number, leaves: Uint8Array[], complete: boolean): Uint8Array[] {
  const n = leaves.length;
  if (m === n) return complete ? [] : [mth(leaves)];
  const k = split(n);
  return m <= k
    ? [...subproof(m, leaves.slice(0, k), complete), mth(leaves.slice(k))]
    : [...subproof(m - k, leaves.slice(k), false), mth(leaves.slice(0, k))];
}

/** The consistency proof between the first `m` leaves and all of `data` (RFC 6962 §2.1.2), 0 < m ≤ n. */
export function consistencyProof(m: number, data: Uint8Array[]): Uint8Array[] {
  if (!Number.isInteger(m) || m < 1 || m > data.length) throw new CryptoError('MALFORMED', 'first tree size outside 1..n');
  return subproof(m, data.map(merkleLeafHash), true);
}

function checkHashes(...hs: Uint8Array[]): boolean {
  return hs.every((h) => h instanceof Uint8Array && h.length === 32);
}

/** RFC 9162 §2.1.3.2: does `proof` put `leafHash` at `index` of a tree of `size` with this root? */
export function verifyInclusion(leafHash: Uint8Array, index: number, size: number, proof: Uint8Array[], root: Uint8Array): boolean {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size || !checkHashes(leafHash, root, ...proof)) return false;
  let fn = index;
  let sn = size - 1;
  let r = leafHash;
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && bytesEqual(r, root);
}

/** RFC 9162 §2.1.4.2: is the tree of `size2` with `root2` an append-only extension of the tree of `size1` with `root1`? */
export function verifyConsistency(size1: number, size2: number, root1: Uint8Array, root2: Uint8Array, proof: Uint8Array[]): boolean {
  if (!Number.isSafeInteger(size1) || !Number.isSafeInteger(size2) || size1 < 1 || size1 > size2 || !checkHashes(root1, root2, ...proof)) return false;
  if (size1 === size2) return proof.length === 0 && bytesEqual(root1, root2);
  let path = proof;
  // A power-of-two first tree is its own first node.
  if ((size1 & (size1 - 1)) === 0) path = [root1, ...proof];
  if (path.length === 0) return false;
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && bytesEqual(fr, root1) && bytesEqual(sr, root2);
}

import { createHash } from 'node:crypto';

/**
 * RFC 6962 tree arithmetic over stored complete-subtree hashes (kt_nodes): node (level L, index i)
 * is MTH of leaves i·2^L … (i+1)·2^L − 1, stored once that subtree is complete. Every subtree an
 * RFC 6962 proof needs starts at a multiple of a power of two at least its length, so it is a
 * right fold of the complete nodes of its length's binary decomposition: a proof at 10^6 leaves
 * reads at most ~40 stored nodes. Pure functions; the repository fetches the nodes.
 * (libs/crypto/src/merkle.ts computes the same proofs from all the leaves; the spec checks both agree.)
 */

export interface NodeRef {
  level: number;
  index: number;
}

export interface TreeNode extends NodeRef {
  hash: Buffer;
}

/** A leaf range [start, end) of the tree. */
export type Range = readonly [number, number];

const LEAF_PREFIX = Buffer.from([0]);
const NODE_PREFIX = Buffer.from([1]);
export const EMPTY_ROOT = createHash('sha256').digest();

export function leafHash(leaf: Uint8Array): Buffer {
  return createHash('sha256').update(LEAF_PREFIX).update(leaf).digest();
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  return createHash('sha256').update(NODE_PREFIX).update(left).update(right).digest();
}

export function refKey(r: NodeRef): string {
  return `${r.level}:${r.index}`;
}

/** The largest power of two strictly below n (n ≥ 2). */
function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** The complete nodes whose fold is MTH(D[start:end]), largest (leftmost) first. */
export function rangeRefs(start: number, end: number): NodeRef[] {
  const out: NodeRef[] = [];
  let pos = start;
  let len = end - start;
  let size = 1;
  let level = 0;
  while (size * 2 <= len) {
    size *= 2;
    level++;
  }
  while (len > 0) {
    if (size <= len) {
      if (pos % size !== 0) throw new Error(`range [${start}, ${end}) is not a proof subtree`);
      out.push({ level, index: pos / size });
      pos += size;
      len -= size;
    }
    size /= 2;
    level--;
  }
  return out;
}

/** RFC 6962 §2.1.1 PATH(m, D[start:end]) as the subtree ranges whose hashes form it (leaf to root). */
export function inclusionRanges(m: number, size: number): Range[] {
  if (!Number.isSafeInteger(m) || !Number.isSafeInteger(size) || m < 0 || m >= size) throw new RangeError('leaf index outside the tree');
  const out: Range[] = [];
  const walk = (i: number, a: number, b: number): void => {
    if (b - a <= 1) return;
    const k = split(b - a);
    if (i < k) {
      walk(i, a, a + k);
      out.push([a + k, b]);
    } else {
      walk(i - k, a + k, b);
      out.push([a, a + k]);
    }
  };
  walk(m, 0, size);
  return out;
}

/** RFC 6962 §2.1.2 PROOF(m, D[0:n]) as subtree ranges, 0 < m ≤ n. */
export function consistencyRanges(m: number, n: number): Range[] {
  if (!Number.isSafeInteger(m) || !Number.isSafeInteger(n) || m < 1 || m > n) throw new RangeError('first tree size outside 1..n');
  const out: Range[] = [];
  const sub = (mm: number, a: number, b: number, complete: boolean): void => {
    if (mm === b - a) {
      if (!complete) out.push([a, b]);
      return;
    }
    const k = split(b - a);
    if (mm <= k) {
      sub(mm, a, a + k, complete);
      out.push([a + k, b]);
    } else {
      sub(mm - k, a + k, b, false);
      out.push([a, a + k]);
    }
  };
  sub(m, 0, n, true);
  return out;
}

/** Every stored node the ranges need. */
export function refsFor(ranges: readonly Range[]): NodeRef[] {
  const seen = new Map<string, NodeRef>();
  for (const [a, b] of ranges) for (const r of rangeRefs(a, b)) seen.set(refKey(r), r);
  return [...seen.values()];
}

function fold(hashes: Uint8Array[]): Buffer {
  let r: Buffer = Buffer.from(hashes[hashes.length - 1]!);
  for (let i = hashes.length - 2; i >= 0; i--) r = nodeHash(hashes[i]!, r);
  return r;
}

/** MTH of each range from the fetched nodes (throws if one is missing: the tree is incomplete). */
export function resolveRanges(ranges: readonly Range[], nodes: ReadonlyMap<string, Uint8Array>): Buffer[] {
  return ranges.map(([a, b]) =>
    fold(
      rangeRefs(a, b).map((r) => {
        const h = nodes.get(refKey(r));
        if (!h) throw new Error(`tree node ${refKey(r)} missing`);
        return h;
      }),
    ),
  );
}

/** The complete subtrees of a tree of `size` leaves (its right edge), largest first. */
export function frontierRefs(size: number): NodeRef[] {
  return size === 0 ? [] : rangeRefs(0, size);
}

/** MTH of the whole tree from its frontier nodes (largest first). */
export function rootOf(frontier: Uint8Array[]): Buffer {
  return frontier.length === 0 ? Buffer.from(EMPTY_ROOT) : fold(frontier);
}

/**
 * Appends leaf hashes to a tree of `size` leaves whose frontier is given (largest first). Returns
 * every node that becomes complete (the leaves themselves at level 0 included) and the new frontier.
 */
export function appendLeaves(size: number, frontier: Uint8Array[], leafHashes: Uint8Array[]): { nodes: TreeNode[]; frontier: Buffer[]; size: number } {
  // By level: a tree of n leaves has a complete frontier node at level L exactly when bit L of n is set.
  const byLevel = new Map<number, Buffer>();
  const refs = frontierRefs(size);
  if (refs.length !== frontier.length) throw new Error('frontier does not match the tree size');
  refs.forEach((r, i) => byLevel.set(r.level, Buffer.from(frontier[i]!)));
  const nodes: TreeNode[] = [];
  let n = size;
  for (const h of leafHashes) {
    let carry: Buffer = Buffer.from(h);
    nodes.push({ level: 0, index: n, hash: carry });
    let level = 0;
    let width = 1;
    while (byLevel.has(level)) {
      carry = nodeHash(byLevel.get(level)!, carry);
      byLevel.delete(level);
      level++;
      width *= 2;
      nodes.push({ level, index: (n + 1) / width - 1, hash: carry });
    }
    byLevel.set(level, carry);
    n++;
  }
  const next = frontierRefs(n).map((r) => byLevel.get(r.level)!);
  return { nodes, frontier: next, size: n };
}

import { consistencyProof, inclusionProof, merkleRoot } from '@umbra/crypto';
import { appendLeaves, consistencyRanges, frontierRefs, inclusionRanges, leafHash, refKey, refsFor, resolveRanges, rootOf, type TreeNode } from './kt-tree';

const data = Array.from({ length: 70 }, (_v, i) => Uint8Array.of(i, (i * 13) % 256, 0x5a));
const hex = (xs: Uint8Array[]) => xs.map((x) => Buffer.from(x).toString('hex'));

describe('kt-tree: proofs from stored subtree nodes equal RFC 6962 proofs over all leaves', () => {
  // Grow the tree in uneven batches, as the sequencer does, keeping every node it emits.
  const store = new Map<string, Buffer>();
  const roots: Buffer[] = [];
  let frontier: Buffer[] = [];
  let size = 0;
  const batches = [1, 2, 1, 5, 7, 1, 16, 3, 34];
  for (const count of batches) {
    const out = appendLeaves(size, frontier, data.slice(size, size + count).map(leafHash));
    out.nodes.forEach((n: TreeNode) => store.set(refKey(n), n.hash));
    frontier = out.frontier;
    for (let s = size + 1; s <= out.size; s++) roots[s] = rootOf(resolveRanges([[0, s]], store));
    size = out.size;
  }

  it('emits exactly the complete nodes and the right roots at every size', () => {
    expect(size).toBe(70);
    // 70 leaves: 70 + 35 + 17 + 8 + 4 + 2 + 1 complete nodes.
    expect(store.size).toBe(70 + 35 + 17 + 8 + 4 + 2 + 1);
    for (let s = 1; s <= 70; s++) expect(roots[s]!.toString('hex')).toBe(Buffer.from(merkleRoot(data.slice(0, s))).toString('hex'));
    expect(rootOf(frontier).toString('hex')).toBe(Buffer.from(merkleRoot(data)).toString('hex'));
    expect(frontierRefs(70)).toEqual([{ level: 6, index: 0 }, { level: 2, index: 16 }, { level: 1, index: 34 }]);
  });

  it('inclusion and consistency proofs match libs/crypto for every index and size up to 70', () => {
    for (let n = 1; n <= 70; n++) {
      const tree = data.slice(0, n);
      for (let m = 0; m < n; m++) expect(hex(resolveRanges(inclusionRanges(m, n), store))).toEqual(hex(inclusionProof(m, tree)));
      for (let m = 1; m <= n; m++) expect(hex(resolveRanges(consistencyRanges(m, n), store))).toEqual(hex(consistencyProof(m, tree)));
    }
  });

  it('reads few nodes at 10^6 leaves and refuses ranges outside the tree', () => {
    let most = 0;
    for (const m of [0, 1, 524_287, 524_288, 999_999]) most = Math.max(most, refsFor(inclusionRanges(m, 1_000_000)).length);
    for (const m of [1, 3, 65_536, 999_999]) most = Math.max(most, refsFor(consistencyRanges(m, 1_000_000)).length);
    expect(most).toBeLessThanOrEqual(40);
    expect(() => inclusionRanges(5, 5)).toThrow(RangeError);
    expect(() => consistencyRanges(0, 5)).toThrow(RangeError);
    expect(() => resolveRanges([[0, 128]], store)).toThrow(/missing/);
  });
});

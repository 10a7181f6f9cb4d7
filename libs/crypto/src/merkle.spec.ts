import { CryptoError } from './errors';
import { consistencyProof, inclusionProof, merkleLeafHash, merkleRoot, verifyConsistency, verifyInclusion } from './merkle';

const leaves = Array.from({ length: 33 }, (_v, i) => Uint8Array.of(i, i * 7 % 256, 0xaa));
const flipped = (proof: Uint8Array[], i: number) => proof.map((p, j) => (j === i ? Uint8Array.from(p, (b, k) => (k === 0 ? b ^ 1 : b)) : p));

describe('RFC 6962 Merkle tree (PROTOCOL.md §12)', () => {
  it('verifies every inclusion and consistency proof for trees of 1..33 leaves, and rejects each with one flipped bit', () => {
    for (let n = 1; n <= leaves.length; n++) {
      const tree = leaves.slice(0, n);
      const root = merkleRoot(tree);
      for (let m = 0; m < n; m++) {
        const proof = inclusionProof(m, tree);
        expect(verifyInclusion(merkleLeafHash(tree[m]!), m, n, proof, root)).toBe(true);
        for (let i = 0; i < proof.length; i++) expect(verifyInclusion(merkleLeafHash(tree[m]!), m, n, flipped(proof, i), root)).toBe(false);
        if (n > 1) expect(verifyInclusion(merkleLeafHash(tree[(m + 1) % n]!), m, n, proof, root)).toBe(false);
      }
      for (let m = 1; m <= n; m++) {
        const proof = consistencyProof(m, tree);
        const old = merkleRoot(tree.slice(0, m));
        expect(verifyConsistency(m, n, old, root, proof)).toBe(true);
        for (let i = 0; i < proof.length; i++) expect(verifyConsistency(m, n, old, root, flipped(proof, i))).toBe(false);
      }
    }
  });

  it('never throws on hostile proofs; refuses to build proofs outside the tree with a CryptoError', () => {
    const root = merkleRoot(leaves);
    expect(verifyInclusion(new Uint8Array(31), 0, 33, [], root)).toBe(false);
    expect(verifyInclusion(merkleLeafHash(leaves[0]!), -1, 33, [], root)).toBe(false);
    expect(verifyInclusion(merkleLeafHash(leaves[0]!), 0, Number.NaN, [], root)).toBe(false);
    expect(verifyConsistency(0, 33, root, root, [])).toBe(false);
    expect(verifyConsistency(4, 33, root, root, [new Uint8Array(5)])).toBe(false);
    expect(() => inclusionProof(33, leaves)).toThrow(CryptoError);
    expect(() => consistencyProof(0, leaves)).toThrow(CryptoError);
  });
});

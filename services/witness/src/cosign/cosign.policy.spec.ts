import { consistencyProof, merkleRoot, sha256 } from '@umbra/crypto';
import { judgeTreeHead } from './cosign.policy';
import type { WitnessState } from './witness-state.repository';

const leaves = Array.from({ length: 12 }, (_, i) => new Uint8Array(82).fill(i + 1));
const other = Array.from({ length: 12 }, (_, i) => new Uint8Array(82).fill(100 + i));
const head = (n: number, data = leaves, timestamp = 2000) => ({ treeSize: n, root: merkleRoot(data.slice(0, n)), timestamp });
const proof = (m: number, n: number, data = leaves) => ({ firstSize: m, secondSize: n, path: m === 0 || m === n ? [] : consistencyProof(m, data.slice(0, n)) });
const at = (n: number, forked = false, sthTimestamp = 1000): WitnessState => ({ treeSize: n, root: n === 0 ? sha256(new Uint8Array(0)) : merkleRoot(leaves.slice(0, n)), sthTimestamp, cosignedAt: 1000, forked });
const none: WitnessState = { treeSize: undefined, root: undefined, sthTimestamp: undefined, cosignedAt: undefined, forked: false };

describe('judgeTreeHead (the witness decision, RFC 9162 §2.1.4)', () => {
  it('trusts the first head, cosigns proven growth and the same head again', () => {
    expect(judgeTreeHead(none, head(5), 0, proof(0, 5))).toEqual({ kind: 'cosign', first: true });
    expect(judgeTreeHead(at(5), head(9), 5, proof(5, 9))).toEqual({ kind: 'cosign', first: false });
    expect(judgeTreeHead(at(8), head(12), 8, proof(8, 12))).toEqual({ kind: 'cosign', first: false });
    expect(judgeTreeHead(at(5), head(5), 5, proof(5, 5))).toEqual({ kind: 'cosign', first: false });
    expect(judgeTreeHead(at(0), head(3), 0, proof(0, 3))).toEqual({ kind: 'cosign', first: false });
  });

  it('asks for a proof from its own size', () => {
    expect(judgeTreeHead(at(5), head(9), 3, proof(3, 9))).toEqual({ kind: 'old-size-mismatch', treeSize: 5 });
  });

  it('calls signed conflicts forks: same size other root, newer smaller tree', () => {
    expect(judgeTreeHead(at(5), head(5, other), 5, proof(5, 5, other))).toEqual({ kind: 'fork', reason: 'same-size-different-root' });
    expect(judgeTreeHead(at(9), head(4, leaves, 5000), 4, proof(4, 4))).toEqual({ kind: 'fork', reason: 'rollback' });
  });

  it('refuses without calling it a fork: a bad proof, an older head, and anything once forked', () => {
    expect(judgeTreeHead(at(5), head(9, [...leaves.slice(0, 5), ...other.slice(5)]), 5, proof(5, 9))).toEqual({ kind: 'inconsistent', reason: 'bad-proof' });
    expect(judgeTreeHead(at(5), head(9), 5, { firstSize: 5, secondSize: 9, path: [] })).toEqual({ kind: 'inconsistent', reason: 'bad-proof' });
    expect(judgeTreeHead(at(0), head(3), 0, { firstSize: 0, secondSize: 3, path: [sha256(new Uint8Array(1))] })).toEqual({ kind: 'inconsistent', reason: 'bad-proof' });
    expect(judgeTreeHead(at(9, false, 3000), head(4, leaves, 1000), 4, proof(4, 4))).toEqual({ kind: 'inconsistent', reason: 'older-head' });
    expect(judgeTreeHead(at(5, true), head(9), 5, proof(5, 9))).toEqual({ kind: 'forked' });
  });
});

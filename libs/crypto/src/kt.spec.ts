import { bytesEqual } from './bytes';
import { CryptoError } from './errors';
import {
  COSIGNATURE_BYTES,
  KT_LEAF_BYTES,
  createCosignature,
  createLookupResult,
  createSth,
  encodeConsistencyProof,
  encodeCosignature,
  encodeKtLeaf,
  ktHandleLabel,
  parseConsistencyProof,
  parseCosignature,
  parseLookupResult,
  parseSth,
  verifyCosignature,
  verifyLookupSignature,
  verifySth,
  verifySthLogSignature,
  withCosignatures,
} from './kt';
import { consistencyProof, inclusionProof, merkleLeafHash, merkleRoot, verifyConsistency, verifyInclusion } from './merkle';
import { pub, sha256, taggedHash, ascii } from './primitives';

const AUX = new Uint8Array(32);
const logSk = new Uint8Array(32).fill(0x11);
const logPk = pub(logSk);
const wSk = new Uint8Array(32).fill(0x22);
const wPk = pub(wSk);
const otherSk = new Uint8Array(32).fill(0x33);

const leaves = Array.from({ length: 9 }, (_v, i) =>
  encodeKtLeaf({ type: i % 2 === 0 ? 1 : 2, label: new Uint8Array(32).fill(i), version: i + 1, logTime: 1_700_000_000_000 + i, valueHash: sha256(Uint8Array.of(i)) }),
);
const flip = (b: Uint8Array, at: number) => Uint8Array.from(b, (x, k) => (k === at ? x ^ 1 : x));

function sthFor(n: number, withCosig = true) {
  const sth = createSth(logSk, { logPk, treeSize: n, timestamp: 1_700_000_000_000, root: merkleRoot(leaves.slice(0, n)) }, AUX);
  return withCosig ? withCosignatures(sth, [createCosignature(sth.tbs, wSk, wPk, 1_700_000_000_500, AUX)]) : sth;
}

describe('KT wire structures (PROTOCOL.md §12)', () => {
  it('cosignature triple: 104 bytes, round-trips, verifies only under its witness key and tree head', () => {
    const sth = sthFor(9, false);
    const c = createCosignature(sth.tbs, wSk, wPk, 42, AUX);
    const bytes = encodeCosignature(c);
    expect(bytes.length).toBe(COSIGNATURE_BYTES);
    const back = parseCosignature(bytes);
    expect(back.t).toBe(42);
    expect(verifyCosignature(sth.tbs, back, wPk)).toBe(true);
    expect(verifyCosignature(sthFor(8, false).tbs, back, wPk)).toBe(false);
    expect(verifyCosignature(sth.tbs, { ...back, t: 43 }, wPk)).toBe(false);
    expect(verifyCosignature(sth.tbs, back, pub(otherSk))).toBe(false);
    expect(() => parseCosignature(bytes.slice(0, 103))).toThrow(CryptoError);
    expect(() => parseCosignature(new Uint8Array([...bytes, 0]))).toThrow(CryptoError);
  });

  it('an STH with attached cosignatures passes verifySth and round-trips; the log signature check alone ignores cosignatures', () => {
    const sth = sthFor(9);
    expect(verifySth(sth.bytes, { logPk, witnessPks: [wPk] }, 1_700_000_001_000).head.treeSize).toBe(9);
    expect(bytesEqual(parseSth(sth.bytes).bytes, sth.bytes)).toBe(true);
    expect(verifySthLogSignature(sthFor(9, false), logPk)).toBe(true);
    expect(verifySthLogSignature(sthFor(9, false), wPk)).toBe(false);
    expect(() => verifySth(sthFor(9, false).bytes, { logPk, witnessPks: [wPk] }, 1_700_000_001_000)).toThrow(CryptoError);
  });

  it('ConsistencyProof round-trips and verifies; malformed encodings are rejected', () => {
    for (let m = 1; m <= 9; m++) {
      const path = consistencyProof(m, leaves);
      const bytes = encodeConsistencyProof({ firstSize: m, secondSize: 9, path });
      expect(bytes.length).toBe(17 + 32 * path.length);
      const p = parseConsistencyProof(bytes);
      expect(p.firstSize).toBe(m);
      expect(p.secondSize).toBe(9);
      expect(verifyConsistency(p.firstSize, p.secondSize, merkleRoot(leaves.slice(0, m)), merkleRoot(leaves), p.path)).toBe(true);
    }
    const ok = encodeConsistencyProof({ firstSize: 3, secondSize: 9, path: consistencyProof(3, leaves) });
    expect(() => parseConsistencyProof(ok.slice(0, ok.length - 1))).toThrow(CryptoError);
    expect(() => parseConsistencyProof(new Uint8Array([...ok, 0]))).toThrow(CryptoError);
    expect(() => encodeConsistencyProof({ firstSize: 5, secondSize: 4, path: [] })).toThrow(CryptoError);
    expect(() => parseConsistencyProof(encodeConsistencyProofUnchecked(5, 4))).toThrow(CryptoError);
  });

  it('LookupResult round-trips; its inclusion proof and kt-lookup signature verify; any flipped byte is caught', () => {
    const sth = sthFor(9);
    const statement = Uint8Array.of(5, 6, 7);
    const res = createLookupResult(logSk, { leafBytes: leaves[4]!, leafIndex: 4, sth, inclusion: inclusionProof(4, leaves), statement }, AUX);
    const back = parseLookupResult(res.bytes);
    expect(bytesEqual(back.bytes, res.bytes)).toBe(true);
    expect(back.leafIndex).toBe(4);
    expect(back.leaf.version).toBe(5);
    expect(bytesEqual(back.statement, statement)).toBe(true);
    expect(back.sth.cosignatures.length).toBe(1);
    expect(bytesEqual(back.sth.bytes, sth.bytes)).toBe(true);
    expect(verifyLookupSignature(back, logPk)).toBe(true);
    expect(verifyLookupSignature(back, wPk)).toBe(false);
    expect(verifyInclusion(merkleLeafHash(back.leafBytes), back.leafIndex, back.sth.head.treeSize, back.inclusion, back.sth.head.root)).toBe(true);
    // The signature binds index, label, type, tree size and root: flip one byte of each field.
    for (const at of [2, 40, KT_LEAF_BYTES + 7, KT_LEAF_BYTES + 8 + 1 + 32 + 7, res.bytes.length - 1]) {
      let ok = true;
      try {
        const t = parseLookupResult(flip(res.bytes, at));
        ok = verifyLookupSignature(t, logPk) && verifyInclusion(merkleLeafHash(t.leafBytes), t.leafIndex, t.sth.head.treeSize, t.inclusion, t.sth.head.root);
      } catch (e) {
        expect(e).toBeInstanceOf(CryptoError);
        ok = false;
      }
      expect(ok).toBe(false);
    }
    expect(() => parseLookupResult(res.bytes.slice(0, res.bytes.length - 1))).toThrow(CryptoError);
    expect(() => parseLookupResult(new Uint8Array([...res.bytes, 0]))).toThrow(CryptoError);
    expect(() => createLookupResult(logSk, { leafBytes: leaves[4]!, leafIndex: 9, sth, inclusion: [], statement }, AUX)).toThrow(CryptoError);
  });

  it('handle label is TH("umbra/v1/kt-handle", canonical handle)', () => {
    expect(bytesEqual(ktHandleLabel('Alice_1'), taggedHash('umbra/v1/kt-handle', ascii('alice_1')))).toBe(true);
    expect(() => ktHandleLabel('a')).toThrow(CryptoError);
  });
});

function encodeConsistencyProofUnchecked(first: number, second: number): Uint8Array {
  const b = new Uint8Array(17);
  const v = new DataView(b.buffer);
  v.setBigUint64(0, BigInt(first));
  v.setBigUint64(8, BigInt(second));
  return b;
}

/**
 * Project Wycheproof vectors (libs/crypto/vectors/published, Apache-2.0, LICENSE-wycheproof) run
 * through the wrappers of primitives.ts. A case that does not apply to suite 0x0001 (another key
 * or nonce size, an encoding our wire never carries) is skipped with a counted reason; every
 * skip reason and its count is asserted, so a changed file or classifier cannot silently skip more.
 */
import { readFileSync } from 'node:fs';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { hexDecode, hexEncode } from './bytes';
import { aesGcmDecrypt, aesGcmEncrypt, ecdh, hkdf, hmacSha256, isValidPublicKey, kemDecapsulate, kemKeygen } from './primitives';
import { cryptoOutcome } from './testing/fixtures';

interface WTest {
  tcId: number;
  comment?: string;
  flags: string[];
  result: 'valid' | 'invalid' | 'acceptable';
  [k: string]: unknown;
}
interface WGroup {
  tests: WTest[];
  [k: string]: unknown;
}
interface WFile {
  algorithm: string;
  numberOfTests: number;
  testGroups: WGroup[];
}

const DIR = `${process.cwd()}/libs/crypto/vectors/published`;
const load = (name: string): WFile => JSON.parse(readFileSync(`${DIR}/${name}`, 'utf8')) as WFile;
const h = (v: unknown): Uint8Array => hexDecode(v as string);
const x = hexEncode;

/** Runs a case: returns a skip reason, or performs its assertions and returns undefined. */
type Runner = (g: WGroup, t: WTest) => string | undefined;


function runFile(name: string, runner: Runner, expectedSkips: Record<string, number>): void {
  const file = load(name);
  const all = file.testGroups.flatMap((g) => g.tests.map((t) => ({ g, t })));
  it(`${name}: all ${file.numberOfTests} cases are run or skipped with a counted reason`, () => {
    expect(all).toHaveLength(file.numberOfTests);
    const skips: Record<string, number> = {};
    let ran = 0;
    for (const { g, t } of all) {
      let reason: string | undefined;
      try {
        reason = runner(g, t);
      } catch (err) {
        throw new Error(`${name} tcId ${t.tcId} (${t.result}, ${t.comment ?? ''}, [${t.flags.join(',')}]): ${err instanceof Error ? err.message : String(err)}`);
      }
      if (reason === undefined) ran++;
      else skips[reason] = (skips[reason] ?? 0) + 1;
    }
    expect(skips).toEqual(expectedSkips);
    expect(ran + Object.values(skips).reduce((a, b) => a + b, 0)).toBe(file.numberOfTests);
    expect(ran).toBeGreaterThan(0);
  });
}

function assert(cond: boolean, msg: string): void {
  if (!cond) throw new Error(msg);
}

describe('Wycheproof (C2SP/wycheproof testvectors_v1) through primitives.ts', () => {
  // AES-256-GCM, 12-byte nonce, 16-byte tag is suite 0x0001's AEAD. Other key and nonce sizes must be
  // refused by the wrapper (a CryptoError), which is checked, but the case is not "run".
  runFile(
    'aes_gcm_test.json',
    (g, t) => {
      const key = h(t.key);
      const iv = h(t.iv);
      const aad = h(t.aad);
      const msg = h(t.msg);
      const sealed = h(`${t.ct as string}${t.tag as string}`);
      if (g.keySize !== 256 || g.ivSize !== 96) {
        const enc = cryptoOutcome(() => aesGcmEncrypt(key, iv, aad, msg));
        const dec = cryptoOutcome(() => aesGcmDecrypt(key, iv, aad, sealed));
        assert(enc !== 'ok' && dec !== 'ok', 'wrapper accepted a key or nonce size outside AES-256-GCM/96');
        return g.keySize !== 256 ? 'AES-128/192 key (suite uses AES-256 only; wrapper rejects it)' : 'nonce other than 96 bits (wrapper rejects it)';
      }
      if (t.result === 'valid') {
        assert(x(aesGcmEncrypt(key, iv, aad, msg)) === x(sealed), 'ciphertext ‖ tag differs');
        assert(x(aesGcmDecrypt(key, iv, aad, sealed)) === x(msg), 'decryption differs');
      } else {
        assert(cryptoOutcome(() => aesGcmDecrypt(key, iv, aad, sealed)) === 'DECRYPT_FAILED', 'invalid case was not rejected with DECRYPT_FAILED');
      }
      return undefined;
    },
    { 'AES-128/192 key (suite uses AES-256 only; wrapper rejects it)': 211, 'nonce other than 96 bits (wrapper rejects it)': 39 },
  );

  runFile(
    'hkdf_sha256_test.json',
    (_g, t) => {
      const args = { salt: h(t.salt), ikm: h(t.ikm), info: h(t.info), length: t.size as number };
      if (t.result === 'valid') assert(x(hkdf(args)) === t.okm, 'okm differs');
      else assert(cryptoOutcome(() => hkdf(args)) === 'MALFORMED', 'invalid output size was not rejected with MALFORMED');
      return undefined;
    },
    {},
  );

  // The protocol only uses full 32-byte HMAC-SHA256 tags; a truncated-tag comparison is not an operation of ours.
  runFile(
    'hmac_sha256_test.json',
    (g, t) => {
      if (g.tagSize !== 256) return 'truncated tag (protocol only uses full 256-bit HMAC tags)';
      const same = x(hmacSha256(h(t.key), h(t.msg))) === t.tag;
      assert(same === (t.result === 'valid'), same ? 'invalid tag matched' : 'valid tag did not match');
      return undefined;
    },
    { 'truncated tag (protocol only uses full 256-bit HMAC tags)': 87 },
  );

  // Our wire carries x-only keys (§0): no SPKI, no Y. Cases in the named-curve SPKI forms are reduced
  // to their x-coordinate; the rest are encodings we never parse.
  const UNCOMPRESSED = '3056301006072a8648ce3d020106052b8104000a034200';
  const COMPRESSED = '3036301006072a8648ce3d020106052b8104000a032200';
  const { n, p } = secp256k1.Point.CURVE();
  const big = (b: Uint8Array): bigint => BigInt(`0x${x(b) || '0'}`);
  runFile(
    'ecdh_secp256k1_test.json',
    (_g, t) => {
      const pubHex = t.public as string;
      if (t.flags.includes('InvalidAsn')) return 'ASN.1 encoding variant (we never parse SPKI)';
      let X: Uint8Array;
      let onCurve = true;
      if (pubHex.startsWith(UNCOMPRESSED) && pubHex.length === UNCOMPRESSED.length + 130 && pubHex.slice(UNCOMPRESSED.length, UNCOMPRESSED.length + 2) === '04') {
        const pt = h(pubHex.slice(UNCOMPRESSED.length + 2));
        X = pt.slice(0, 32);
        const xv = big(X);
        const yv = big(pt.slice(32));
        onCurve = xv < p && yv < p && (yv * yv - (xv * xv * xv + 7n)) % p === 0n;
      } else if (pubHex.startsWith(COMPRESSED) && pubHex.length === COMPRESSED.length + 66 && ['02', '03'].includes(pubHex.slice(COMPRESSED.length, COMPRESSED.length + 2))) {
        X = h(pubHex.slice(COMPRESSED.length + 2));
      } else {
        return 'public key not in a named-curve secp256k1 SPKI form (we never parse SPKI)';
      }
      const skInt = big(h(t.private));
      const sk = skInt < 2n ** 256n ? hexDecode(skInt.toString(16).padStart(64, '0')) : h(t.private);
      if (skInt === 0n || skInt >= n) {
        assert(cryptoOutcome(() => ecdh(sk, X)) === 'BAD_KEY', 'out-of-range secret key accepted');
        return undefined;
      }
      const lifts = isValidPublicKey(X);
      if (lifts && !onCurve) return 'off-curve (x, y) whose x lifts: x-only ECDH discards y, so lift_x(x) is on the curve by construction';
      if (!lifts) {
        assert(t.result !== 'valid', 'valid case whose x does not lift');
        assert(cryptoOutcome(() => ecdh(sk, X)) === 'BAD_KEY', 'x that fails lift_x was not rejected with BAD_KEY');
        return undefined;
      }
      assert(t.result !== 'invalid', 'invalid case with a valid on-curve point');
      assert(x(ecdh(sk, X)) === t.shared, 'shared secret differs');
      return undefined;
    },
    {
      'ASN.1 encoding variant (we never parse SPKI)': 222,
      'public key not in a named-curve secp256k1 SPKI form (we never parse SPKI)': 35,
      'off-curve (x, y) whose x lifts: x-only ECDH discards y, so lift_x(x) is on the curve by construction': 5,
    },
  );

  runFile(
    'mlkem_1024_test.json',
    (_g, t) => {
      const seed = h(t.seed);
      const c = h(t.c);
      if (t.result === 'invalid') {
        const code = cryptoOutcome(() => kemDecapsulate(c, seed));
        assert(code === 'BAD_KEY' || code === 'MALFORMED', `invalid case gave ${code}`);
        return undefined;
      }
      if (t.ek !== undefined) assert(x(kemKeygen(seed).publicKey) === t.ek, 'encapsulation key differs');
      assert(x(kemDecapsulate(c, seed)) === t.K, 'shared key differs');
      return undefined;
    },
    {},
  );
});

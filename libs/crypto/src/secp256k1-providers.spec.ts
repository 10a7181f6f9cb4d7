/**
 * The three secp256k1 providers (libsecp256k1 as a native addon, Node's default; libsecp256k1 in
 * WebAssembly; @noble, the browser's and the fallback) through the wrappers of primitives.ts: the
 * BIP340 and Wycheproof ECDH vectors, the rejected inputs (x ≥ p, x not on the curve, secret 0 and
 * n), parity independence, and random cases compared byte for byte. Then the same for ML-KEM-1024 (node:crypto against @noble).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { hexDecode, hexEncode } from './bytes';
import {
  ecdh,
  generateSecretKey,
  kemDecapsulate,
  kemEncapsulate,
  kemKeygen,
  loadNativeMlKemProvider,
  mlKemProvider,
  nobleMlKemProvider,
  useMlKemProvider,
  type MlKemProvider,
  isValidPublicKey,
  loadAddonSecp256k1Provider,
  loadNativeSecp256k1Provider,
  loadWasmSecp256k1Provider,
  nobleSecp256k1Provider,
  pub,
  randomBytes,
  secp256k1Provider,
  sign,
  useSecp256k1Provider,
  verify,
  type Secp256k1Provider,
} from './primitives';
import { cryptoOutcome } from './testing/fixtures';

// This spec compares the providers, so it loads the native ones even in a run that pins @noble for the rest.
delete process.env.UMBRA_SECP256K1;
delete process.env.UMBRA_NATIVE_KEM;
const addon = loadAddonSecp256k1Provider();
const wasm = loadWasmSecp256k1Provider();
/** Where secp256k1@5.0.2 ships a prebuilt binary: there the addon must load (CI is linux-x64 glibc). */
const hasPrebuild = ['linux-x64', 'darwin-arm64', 'win32-x64'].includes(`${process.platform}-${process.arch}`);
const providers: (Secp256k1Provider | undefined)[] = [...(hasPrebuild || addon ? [addon] : []), wasm, nobleSecp256k1Provider];
const nodeRequire = createRequire(path.join(process.cwd(), 'index.js'));
const { n, p } = secp256k1.Point.CURVE();
const be32 = (v: bigint): Uint8Array => hexDecode(v.toString(16).padStart(64, '0'));
const x = hexEncode;

/** Runs `f` once per provider (pinned) and returns the results in provider order. */
function each<T>(f: () => T): T[] {
  try {
    return providers.map((pr) => {
      if (!pr) throw new Error('a provider is missing');
      useSecp256k1Provider(pr);
      return f();
    });
  } finally {
    useSecp256k1Provider(undefined);
  }
}

/** The same value from every provider, returned once. */
function same<T>(f: () => T): T {
  const [a, ...rest] = each(f);
  for (const b of rest) expect(b).toEqual(a);
  return a!;
}

/** An x in [0, p) for which x³ + 7 is not a square: lift_x fails. */
function offCurveX(): Uint8Array {
  for (let v = 5n; ; v++) {
    const rhs = (v ** 3n + 7n) % p;
    let r = 1n;
    let b = rhs;
    let e = (p - 1n) / 2n;
    while (e > 0n) {
      if (e & 1n) r = (r * b) % p;
      b = (b * b) % p;
      e >>= 1n;
    }
    if (r === p - 1n) return be32(v);
  }
}

describe('secp256k1 providers', () => {
  it('the native addon loads where a prebuilt binary exists, passes the check against @noble, and is the default', () => {
    if (hasPrebuild && !addon) {
      // Say why: the binary's own load error, not just "undefined".
      nodeRequire('secp256k1/bindings');
      throw new Error('secp256k1/bindings loaded but the provider failed its known-answer check');
    }
    if (!addon) {
      expect(secp256k1Provider().name).toBe('libsecp256k1-wasm');
      return;
    }
    expect(addon?.name).toBe('libsecp256k1-native');
    expect(wasm?.name).toBe('libsecp256k1-wasm');
    expect(loadNativeSecp256k1Provider()?.name).toBe('libsecp256k1-native');
    expect(secp256k1Provider().name).toBe('libsecp256k1-native');
  });

  it('the addon is the N-API binary, never the pure-JS elliptic fallback of the package', () => {
    const loaded = Object.keys(nodeRequire.cache);
    if (hasPrebuild || addon) expect(loaded.filter((f) => /[\\/]secp256k1[\\/]prebuilds[\\/].*\.node$/.test(f) || /[\\/]secp256k1[\\/]build[\\/].*\.node$/.test(f))).toHaveLength(1);
    expect(loaded.filter((f) => /[\\/]node_modules[\\/](elliptic|secp256k1[\\/]lib[\\/]elliptic)/.test(f))).toEqual([]);
  });

  it('UMBRA_SECP256K1 picks one provider, and an unknown value is an error, not @noble', () => {
    const pick = (v: string) => {
      process.env.UMBRA_SECP256K1 = v;
      useSecp256k1Provider(undefined);
      try {
        return secp256k1Provider().name;
      } finally {
        delete process.env.UMBRA_SECP256K1;
        useSecp256k1Provider(undefined);
      }
    };
    const best = addon ? 'libsecp256k1-native' : 'libsecp256k1-wasm';
    if (addon) expect(pick('native')).toBe('libsecp256k1-native');
    expect([pick('wasm'), pick('noble'), pick('')]).toEqual(['libsecp256k1-wasm', 'noble', best]);
    expect(() => pick('elliptic')).toThrow(/UMBRA_SECP256K1 must be one of native\|wasm\|noble/);
  });

  it('every provider returns new arrays: a caller changing one does not change the next result', () => {
    const sk = generateSecretKey();
    const X = pub(generateSecretKey());
    for (const pr of providers) {
      const p1 = pr!.pub(sk);
      const e1 = pr!.ecdh(sk, X);
      expect([p1 instanceof Uint8Array, e1 instanceof Uint8Array]).toEqual([true, true]);
      const [p0, e0] = [x(p1), x(e1)];
      p1.fill(0);
      e1.fill(0);
      expect([x(pr!.pub(sk)), x(pr!.ecdh(sk, X))]).toEqual([p0, e0]);
    }
  });

  it('the BIP340 test vectors: same public keys, signatures and verdicts from all three', () => {
    const rows = readFileSync(`${process.cwd()}/libs/crypto/vectors/published/bip340-test-vectors.csv`, 'utf8').trim().split('\n').slice(1);
    let signed = 0;
    let verified = 0;
    let otherLength = 0;
    for (const row of rows) {
      const [idx, skHex, pkHex, auxHex, msgHex, sigHex, result] = row.split(',');
      const msg = hexDecode(msgHex!);
      if (msg.length !== 32) {
        // The wrappers only ever sign/verify a 32-byte tagged hash.
        otherLength++;
        continue;
      }
      if (skHex) {
        const sk = hexDecode(skHex);
        for (const [i, pr] of providers.entries()) {
          if (!pr) throw new Error('a provider is missing');
          expect([i, idx, x(pr.pub(sk))]).toEqual([i, idx, pkHex!.toLowerCase()]);
          expect([i, idx, x(pr.signSchnorr(msg, sk, hexDecode(auxHex!)))]).toEqual([i, idx, sigHex!.toLowerCase()]);
        }
        signed++;
      }
      for (const [i, pr] of providers.entries()) expect([i, idx, pr!.verifySchnorr(hexDecode(sigHex!), msg, hexDecode(pkHex!))]).toEqual([i, idx, result === 'TRUE']);
      verified++;
    }
    expect({ signed, verified, otherLength }).toEqual({ signed: 4, verified: 15, otherLength: rows.length - 15 });
  });

  it('Wycheproof ECDH secp256k1: every case has the same outcome and bytes with all three', () => {
    const file = JSON.parse(readFileSync(`${process.cwd()}/libs/crypto/vectors/published/ecdh_secp256k1_test.json`, 'utf8')) as {
      testGroups: { tests: { tcId: number; public: string; private: string; shared: string; result: string }[] }[];
    };
    const prefixes = ['3056301006072a8648ce3d020106052b8104000a034200', '3036301006072a8648ce3d020106052b8104000a032200'];
    const outcomes: Record<string, number> = {};
    let ran = 0;
    for (const t of file.testGroups.flatMap((g) => g.tests)) {
      const prefix = prefixes.find((pre) => t.public.startsWith(pre) && (t.public.length === pre.length + 130 || t.public.length === pre.length + 66));
      if (!prefix) continue;
      const X = hexDecode(t.public.slice(prefix.length + 2, prefix.length + 66));
      const skInt = BigInt(`0x${t.private}`);
      const sk = skInt < 2n ** 256n ? be32(skInt) : hexDecode(t.private);
      const got = each(() => {
        const o = cryptoOutcome(() => ecdh(sk, X));
        return o === 'ok' ? x(ecdh(sk, X)) : o;
      });
      for (const other of got.slice(1)) expect([t.tcId, other]).toEqual([t.tcId, got[0]]);
      const key = got[0] === t.shared ? 'shared' : got[0]!.length === 64 ? 'other-bytes' : got[0]!;
      outcomes[key] = (outcomes[key] ?? 0) + 1;
      ran++;
    }
    expect(ran).toBeGreaterThan(200);
    // Valid cases give the published secret, rejected ones BAD_KEY; "other-bytes" are off-curve (x, y) whose x lifts.
    expect(Object.keys(outcomes).sort()).toEqual(['BAD_KEY', 'other-bytes', 'shared'].filter((k) => outcomes[k]));
    expect(outcomes.shared).toBeGreaterThan(100);
    expect(outcomes.BAD_KEY).toBeGreaterThan(5);
  });

  it('rejects x ≥ p, an x not on the curve, and secrets 0, n, n+1 and 2²⁵⁶−1 — with all three', () => {
    const sk = generateSecretKey();
    const bad = offCurveX();
    for (const X of [be32(p), be32(p + 1n), be32(2n ** 256n - 1n), bad]) {
      expect(same(() => cryptoOutcome(() => ecdh(sk, X)))).toBe('BAD_KEY');
      expect(same(() => isValidPublicKey(X))).toBe(false);
    }
    // x = p − 1 ... 0 lifts or not as the curve says, identically.
    for (const v of [0n, 1n, 2n, p - 1n, p - 2n]) same(() => cryptoOutcome(() => ecdh(sk, be32(v))));
    const X = pub(generateSecretKey());
    for (const s of [0n, n, n + 1n, 2n ** 256n - 1n]) {
      expect(same(() => cryptoOutcome(() => ecdh(be32(s), X)))).toBe('BAD_KEY');
      expect(same(() => cryptoOutcome(() => pub(be32(s))))).toBe('BAD_KEY');
      expect(same(() => cryptoOutcome(() => sign(be32(s), 't', new Uint8Array(3))))).toBe('BAD_KEY');
    }
    expect(same(() => x(ecdh(be32(n - 1n), X)))).toHaveLength(64);
    expect(same(() => x(pub(be32(1n))))).toBe('79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798');
  });

  it('ECDH is independent of the parity of the peer point, and symmetric', () => {
    for (let i = 0; i < 10; i++) {
      const a = generateSecretKey();
      const b = generateSecretKey();
      const B = pub(b);
      const shared = same(() => x(ecdh(a, B)));
      // x(a·P) = x(a·(−P)): the odd-y point of the same x gives the same secret.
      expect(x(secp256k1.getSharedSecret(a, Uint8Array.of(0x03, ...B)).subarray(1))).toBe(shared);
      expect(x(secp256k1.getSharedSecret(a, Uint8Array.of(0x02, ...B)).subarray(1))).toBe(shared);
      expect(same(() => x(ecdh(b, pub(a))))).toBe(shared);
    }
  });

  it('random keys and messages: same signatures, each verifies the others, and all refuse the same forgeries', () => {
    for (let i = 0; i < 25; i++) {
      const sk = generateSecretKey();
      const aux = randomBytes(32);
      const m = randomBytes(i * 7);
      const sig = same(() => x(sign(sk, `p${i}`, m, aux)));
      const pk = same(() => x(pub(sk)));
      const s = hexDecode(sig);
      const P = hexDecode(pk);
      expect(same(() => verify(P, `p${i}`, m, s))).toBe(true);
      expect(same(() => verify(P, `p${i}x`, m, s))).toBe(false);
      const flipped = s.slice();
      flipped[i % 64]! ^= 1 << i % 8;
      expect(same(() => verify(P, `p${i}`, m, flipped))).toBe(false);
      // r ≥ p, r in [n, p) (the case the WebAssembly provider hands to @noble), s ≥ n, s = n.
      for (const r of [be32(p), be32(2n ** 256n - 1n), be32(n), be32(n + 1n), be32(p - 1n)]) expect(same(() => verify(P, `p${i}`, m, Uint8Array.of(...r, ...s.subarray(32))))).toBe(false);
      for (const sv of [n, n + 1n, 2n ** 256n - 1n]) expect(same(() => verify(P, `p${i}`, m, Uint8Array.of(...s.subarray(0, 32), ...be32(sv))))).toBe(false);
      // A key that does not lift, or x ≥ p.
      expect(same(() => verify(offCurveX(), `p${i}`, m, s))).toBe(false);
      expect(same(() => verify(be32(p + BigInt(i)), `p${i}`, m, s))).toBe(false);
      expect(same(() => verify(P.subarray(1), `p${i}`, m, s))).toBe(false);
    }
  });

  it('random x values: all three agree on which lift', () => {
    let valid = 0;
    for (let i = 0; i < 200; i++) {
      const X = randomBytes(32);
      if (same(() => isValidPublicKey(X))) valid++;
    }
    // About half of all x lift.
    expect(valid).toBeGreaterThan(60);
    expect(valid).toBeLessThan(140);
  });

  it('the main entry stays browser-safe: tiny-secp256k1, secp256k1 and node:* are reached only by type imports', () => {
    const seen = new Set<string>();
    const offenders: string[] = [];
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const source = readFileSync(file, 'utf8');
      for (const m of source.matchAll(/^\s*(import|export)(\s+type)?\s[^;]*?from\s+'([^']+)'/gm)) {
        const spec = m[3]!;
        if (spec.startsWith('.')) visit(path.resolve(path.dirname(file), `${spec.replace(/\.js$/, '')}.ts`));
        else if ((spec.startsWith('node:') || /^(tiny-)?secp256k1(\/|$)/.test(spec)) && !m[2]) offenders.push(`${path.basename(file)} → ${spec}`);
      }
    };
    visit(path.join(process.cwd(), 'libs/crypto/src/index.ts'));
    expect(seen.has(path.join(process.cwd(), 'libs/crypto/src/secp256k1-wasm.ts'))).toBe(true);
    expect(seen.has(path.join(process.cwd(), 'libs/crypto/src/secp256k1-native.ts'))).toBe(true);
    expect(offenders).toEqual([]);
  });
});

describe('ML-KEM-1024 providers (node:crypto and @noble)', () => {
  const nativeKem = loadNativeMlKemProvider();
  const kems: (MlKemProvider | undefined)[] = [nativeKem, nobleMlKemProvider];
  function eachKem<T>(f: () => T): T[] {
    try {
      return kems.map((k) => {
        if (!k) throw new Error('a KEM provider is missing');
        useMlKemProvider(k);
        return f();
      });
    } finally {
      useMlKemProvider(undefined);
    }
  }

  it('Node 24 uses node:crypto by default', () => {
    expect(nativeKem?.name).toBe('node:crypto');
    expect(mlKemProvider().name).toBe('node:crypto');
  });

  it('decapsulation from a seed: same secret from both, for valid and for tampered ciphertexts (implicit rejection)', () => {
    for (let i = 0; i < 6; i++) {
      const seed = randomBytes(64);
      const { publicKey } = kemKeygen(seed);
      const enc = kemEncapsulate(publicKey, randomBytes(32));
      const [a, b] = eachKem(() => x(kemDecapsulate(enc.cipherText, seed)));
      expect(a).toBe(b);
      expect(a).toBe(x(enc.sharedSecret));
      const bad = enc.cipherText.slice();
      bad[i * 100]! ^= 1 << i;
      const [c, d] = eachKem(() => x(kemDecapsulate(bad, seed)));
      expect(c).toBe(d);
      expect(c).not.toBe(a);
    }
  });

  it('encapsulation with fresh randomness: each side decapsulates what the other encapsulated', () => {
    const seed = randomBytes(64);
    const { publicKey, secretKey } = kemKeygen(seed);
    for (const enc of eachKem(() => kemEncapsulate(publicKey))) {
      expect(eachKem(() => x(kemDecapsulate(enc.cipherText, seed)))).toEqual([x(enc.sharedSecret), x(enc.sharedSecret)]);
      expect(x(kemDecapsulate(enc.cipherText, secretKey))).toBe(x(enc.sharedSecret));
    }
  });

  it('both refuse an encapsulation key that fails the FIPS 203 modulus check (BAD_KEY)', () => {
    const { publicKey } = kemKeygen(randomBytes(64));
    const bad = publicKey.slice();
    bad[0] = 0xff;
    bad[1]! |= 0x0f; // first coefficient 0xfff ≥ q
    expect(eachKem(() => cryptoOutcome(() => kemEncapsulate(bad)))).toEqual(['BAD_KEY', 'BAD_KEY']);
    expect(eachKem(() => cryptoOutcome(() => kemEncapsulate(publicKey.subarray(1))))).toEqual(['BAD_KEY', 'BAD_KEY']);
  });
});

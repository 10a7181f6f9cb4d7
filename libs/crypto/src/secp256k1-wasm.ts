import type * as TinySecp256k1 from 'tiny-secp256k1';
import type { Secp256k1Provider } from './primitives';

/** Group order n, big-endian: tiny-secp256k1 refuses a Schnorr r ≥ n before libsecp256k1 sees it. */
const N_BE = Uint8Array.from([
  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
]);

function lessThanN(b: Uint8Array): boolean {
  for (let i = 0; i < 32; i++) if (b[i] !== N_BE[i]) return b[i]! < N_BE[i]!;
  return false;
}

/**
 * secp256k1 through libsecp256k1 compiled to WebAssembly (tiny-secp256k1), for Node. Measured on the
 * 2-core box: ECDH 0.3 ms (node:crypto's OpenSSL secp256k1 1.5 ms, @noble 3.8 ms), BIP340 sign 0.3 ms
 * (@noble 3.7), verify 0.37 ms (@noble 1.7). It is loaded only in Node (see primitives.ts), never by the
 * browser bundle, and computes the same bytes as @noble (checked by secp256k1-providers.spec.ts).
 * One case goes to `fallback`: a Schnorr signature whose r lies in [n, p), which BIP340 allows and
 * tiny-secp256k1's input check refuses. ECDH here is `pointMultiply`, i.e. secp256k1_ec_pubkey_tweak_mul,
 * whose multiplication is not constant time in the scalar (libsecp256k1's ECDH uses ecmult_const):
 * Node prefers the native addon (secp256k1-native.ts), which does ECDH with secp256k1_ecdh.
 */
export function wasmSecp256k1Provider(lib: typeof TinySecp256k1, fallback: Secp256k1Provider): Secp256k1Provider {
  const compressed = new Uint8Array(33);
  return {
    name: 'libsecp256k1-wasm',
    pub: (sk) => lib.xOnlyPointFromScalar(sk),
    ecdh(sk, X) {
      compressed[0] = 0x02;
      compressed.set(X, 1);
      const p = lib.pointMultiply(compressed, sk, true);
      if (!p) throw new Error('point at infinity');
      return p.slice(1);
    },
    isValidPublicKey: (X) => lib.isXOnlyPoint(X),
    signSchnorr: (msg32, sk, aux) => lib.signSchnorr(msg32, sk, aux),
    verifySchnorr(sig, msg32, pk) {
      if (!lessThanN(sig.subarray(0, 32))) return fallback.verifySchnorr(sig, msg32, pk);
      try {
        return lib.verifySchnorr(msg32, pk, sig);
      } catch {
        // Not an x-only key (lift_x fails, x ≥ p) or s ≥ n: invalid, as @noble says.
        return false;
      }
    },
  };
}

import type { Secp256k1Provider } from './primitives';

/**
 * The part of `secp256k1/bindings` (secp256k1@5.0.2, the N-API addon without its pure-JS `elliptic`
 * fallback) used here. The package ships no types.
 */
export interface Secp256k1Addon {
  contextRandomize(seed: Uint8Array | null): void;
  publicKeyCreate(sk: Uint8Array, compressed: boolean): Uint8Array;
  publicKeyVerify(pub: Uint8Array): boolean;
  ecdh(pub: Uint8Array, sk: Uint8Array, options: { hashfn: (x: Uint8Array, y: Uint8Array) => Uint8Array }, output: Uint8Array): Uint8Array;
}

function evenY(X: Uint8Array): Uint8Array {
  const c = new Uint8Array(33);
  c[0] = 0x02;
  c.set(X, 1);
  return c;
}

// libsecp256k1 hands the shared point's coordinates to this "hash"; returning x keeps the raw x-coordinate.
const rawX = { hashfn: (x: Uint8Array) => x };

/**
 * secp256k1 through libsecp256k1 as a native Node addon (the prebuilt binary of the `secp256k1`
 * package) for pub, ECDH and the lift_x check; BIP340 goes to `schnorr` (the WebAssembly provider,
 * or @noble), because the addon has no Schnorr. ECDH is libsecp256k1's own (secp256k1_ecdh, constant
 * time in the secret) with a "hash" that keeps the raw x. Measured on the shared 2-core box (load
 * 2.5–6.8): ECDH 0.07–0.2 ms, pub 0.03–0.07 ms (WASM 0.2–0.5 and 0.13–0.3). lift_x(X) is the point
 * 0x02‖X, so ECDH and the key check parse that compressed key; libsecp256k1 refuses x ≥ p and an x
 * that does not lift. Every result is a new array of this realm: callers keep them.
 */
export function nativeSecp256k1Provider(addon: Secp256k1Addon, schnorr: Secp256k1Provider, seed: Uint8Array): Secp256k1Provider {
  // Blinds the context's precomputed tables against side channels (libsecp256k1's recommendation).
  addon.contextRandomize(seed);
  return {
    name: schnorr.name === 'libsecp256k1-wasm' ? 'libsecp256k1-native' : `libsecp256k1-native+${schnorr.name}-schnorr`,
    pub: (sk) => new Uint8Array(addon.publicKeyCreate(sk, true).subarray(1)),
    ecdh(sk, X) {
      const out = new Uint8Array(32);
      addon.ecdh(evenY(X), sk, rawX, out);
      return out;
    },
    isValidPublicKey: (X) => addon.publicKeyVerify(evenY(X)),
    signSchnorr: (msg32, sk, aux) => schnorr.signSchnorr(msg32, sk, aux),
    verifySchnorr: (sig, msg32, pk) => schnorr.verifySchnorr(sig, msg32, pk),
  };
}

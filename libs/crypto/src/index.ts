import { schnorr } from '@noble/curves/secp256k1.js';
export function pubOf(sk: Uint8Array): Uint8Array { return schnorr.getPublicKey(sk); }

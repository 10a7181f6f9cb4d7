import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes, taggedHash } from '@umbra/crypto';

/** Registration proof of work: TH("umbra/v1/pow", challenge[32] || account_id[32] || solution[8]) must start with `difficulty` zero bits. */
export const POW_TAG = 'umbra/v1/pow';

export function leadingZeroBits(hash: Uint8Array): number {
  let bits = 0;
  for (const byte of hash) {
    if (byte === 0) {
      bits += 8;
      continue;
    }
    return bits + Math.clz32(byte) - 24;
  }
  return bits;
}

export function powHash(challenge: Uint8Array, accountId: Uint8Array, solution: Uint8Array): Uint8Array {
  return taggedHash(POW_TAG, concatBytes(challenge, accountId, solution));
}

export function checkPow(challenge: Uint8Array, accountId: Uint8Array, solution: Uint8Array, difficulty: number): boolean {
  return challenge.length === 32 && accountId.length === 32 && solution.length === 8 && leadingZeroBits(powHash(challenge, accountId, solution)) >= difficulty;
}

/**
 * Finds a solution by counting up (expected 2^difficulty hashes). The tag hashes, challenge and
 * account id fill exactly two SHA-256 blocks, hashed once; each try hashes only the solution.
 * It yields to the event loop every `sliceSize` tries so a browser tab or a socket stays alive.
 */
export async function solvePow(challenge: Uint8Array, accountId: Uint8Array, difficulty: number, opts: { sliceSize?: number; maxAttempts?: number } = {}): Promise<Uint8Array> {
  const tag = sha256(new TextEncoder().encode(POW_TAG));
  const base = sha256.create().update(tag).update(tag).update(challenge).update(accountId);
  const solution = new Uint8Array(8);
  const view = new DataView(solution.buffer);
  const slice = opts.sliceSize ?? 20_000;
  const max = opts.maxAttempts ?? 2 ** 40;
  for (let i = 0; i < max; i++) {
    view.setUint32(0, Math.floor(i / 2 ** 32));
    view.setUint32(4, i >>> 0);
    if (leadingZeroBits(base.clone().update(solution).digest()) >= difficulty) return solution.slice();
    if (i % slice === slice - 1) await new Promise((r) => setTimeout(r, 0));
  }
  throw new Error('proof of work not found within maxAttempts');
}

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
  return solution.length === 8 && leadingZeroBits(powHash(challenge, accountId, solution)) >= difficulty;
}

/** Finds a solution by counting up; expected 2^difficulty hashes. */
export function solvePow(challenge: Uint8Array, accountId: Uint8Array, difficulty: number, maxAttempts = 2 ** 32): Uint8Array {
  const prefix = concatBytes(challenge, accountId);
  const solution = new Uint8Array(8);
  const view = new DataView(solution.buffer);
  for (let i = 0; i < maxAttempts; i++) {
    view.setUint32(0, Math.floor(i / 2 ** 32));
    view.setUint32(4, i >>> 0);
    if (leadingZeroBits(taggedHash(POW_TAG, concatBytes(prefix, solution))) >= difficulty) return solution.slice();
  }
  throw new Error('proof of work not found within maxAttempts');
}

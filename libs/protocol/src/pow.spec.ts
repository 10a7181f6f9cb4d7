import { checkPow, leadingZeroBits, powHash, solvePow } from './pow';

describe('registration proof of work', () => {
  const challenge = new Uint8Array(32).fill(7);
  const account = new Uint8Array(32).fill(9);

  it('counts leading zero bits', () => {
    expect(leadingZeroBits(Uint8Array.of(0, 0, 0x80))).toBe(16);
    expect(leadingZeroBits(Uint8Array.of(0x01))).toBe(7);
    expect(leadingZeroBits(Uint8Array.of(0, 0))).toBe(16);
  });

  it('finds a solution the server accepts, bound to the challenge and the account', async () => {
    const solution = await solvePow(challenge, account, 10);
    expect(checkPow(challenge, account, solution, 10)).toBe(true);
    expect(leadingZeroBits(powHash(challenge, account, solution))).toBeGreaterThanOrEqual(10);
    const other = new Uint8Array(32).fill(8);
    expect(checkPow(challenge, other, solution, 10) && checkPow(other, account, solution, 10)).toBe(false);
    expect(checkPow(challenge, account, solution.slice(0, 7), 0)).toBe(false);
  });
});

import { randomBytes } from 'node:crypto';
import { b64uDecode, b64uDecodedLength } from './bytes';

function verdict(s: string): number | undefined {
  try {
    return b64uDecode(s).length;
  } catch {
    return undefined;
  }
}

describe('b64uDecodedLength', () => {
  it('agrees with b64uDecode on canonical encodings of every length up to 64 bytes', () => {
    for (let n = 0; n <= 64; n++) {
      const s = Buffer.from(randomBytes(n)).toString('base64url');
      expect(b64uDecodedLength(s)).toBe(n);
    }
  });

  it('agrees with b64uDecode on every single-character change of short strings (trailing bits, alphabet, length)', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=. é';
    for (let len = 1; len <= 7; len++) {
      const base = Buffer.from(randomBytes(len)).toString('base64url');
      for (let i = 0; i < base.length; i++) {
        for (const ch of alphabet) {
          const s = base.slice(0, i) + ch + base.slice(i + 1);
          expect([s, b64uDecodedLength(s)]).toEqual([s, verdict(s)]);
        }
      }
      expect(b64uDecodedLength(base + 'A')).toBe(verdict(base + 'A'));
    }
  });
});

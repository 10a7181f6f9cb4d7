import { TokenBucket } from './rate-limiter';

describe('TokenBucket', () => {
  it('allows a burst, then the rate', () => {
    const b = new TokenBucket(10, 20, 0);
    let n = 0;
    while (b.take(0)) n++;
    expect(n).toBe(20);
    expect(b.take(50)).toBe(false);
    expect(b.take(100)).toBe(true);
    expect(b.take(100)).toBe(false);
  });
});

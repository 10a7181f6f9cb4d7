import { keySlot } from './key-slot';

describe('keySlot', () => {
  it('matches CLUSTER KEYSLOT', () => {
    expect(keySlot('foo')).toBe(12182);
    expect(keySlot('hello')).toBe(866);
    expect(keySlot('')).toBe(0);
  });

  it('hashes only the first non-empty hash tag', () => {
    expect(keySlot('{user1000}.following')).toBe(keySlot('user1000'));
    expect(keySlot('{umbra}:bull:relay:wait')).toBe(keySlot('umbra'));
    // Values from CLUSTER KEYSLOT (test/redis-cluster.heavy.ts compares against a live cluster).
    expect(keySlot('foo{}{bar}')).toBe(8363);
    expect(keySlot('bar')).toBe(5061);
    expect(keySlot('foo{{bar}}zap')).toBe(4015);
    expect(keySlot('{bar')).toBe(4015);
  });
});

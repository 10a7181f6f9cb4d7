import { clientBucket } from './client-address';

describe('clientBucket', () => {
  it('keeps an IPv4 address, also when it arrives IPv4-mapped', () => {
    expect(clientBucket('203.0.113.7')).toBe('203.0.113.7');
    expect(clientBucket('::ffff:203.0.113.7')).toBe('203.0.113.7');
  });

  it('puts two IPv6 addresses of one /64 into one bucket, and another /64 into another', () => {
    const a = clientBucket('2001:db8:1:2:aaaa:bbbb:cccc:dddd');
    const b = clientBucket('2001:0db8:0001:0002::1');
    expect(a).toBe(b);
    expect(a).toBe('2001:db8:1:2::/64');
    expect(clientBucket('2001:db8:1:3::1')).not.toBe(a);
    expect(clientBucket('::1')).toBe('0:0:0:0::/64');
    expect(clientBucket('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
  });

  it('never passes an arbitrary string through as a key', () => {
    expect(clientBucket('not-an-address')).toBe('unknown');
    expect(clientBucket(undefined)).toBe('unknown');
    expect(clientBucket('')).toBe('unknown');
  });
});

import { isIP } from 'node:net';

/**
 * The key per-address limits count under: an IPv4 address as it is (IPv4-mapped IPv6 unwrapped), an
 * IPv6 address by its /64 (one subscriber usually holds a whole /64, so per-address buckets would
 * give them 2^64 of them). Anything that is not an address shares the one bucket "unknown".
 */
export function clientBucket(address: string | undefined): string {
  if (!address) return 'unknown';
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped) return mapped[1]!;
  const bare = address.replace(/%.*$/, '');
  const family = isIP(bare);
  if (family === 4) return bare;
  if (family !== 6) return 'unknown';
  const [head = '', tail = ''] = bare.includes('::') ? bare.split('::') : [bare, ''];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  // An embedded IPv4 tail takes two groups; the /64 prefix never reaches it unless the address has no '::'.
  const rightGroups = right.reduce((n, g) => n + (g.includes('.') ? 2 : 1), 0);
  const groups = bare.includes('::') ? [...left, ...Array<string>(8 - left.length - rightGroups).fill('0'), ...right] : left;
  return `${groups.slice(0, 4).map((g) => (parseInt(g, 16) || 0).toString(16)).join(':')}::/64`;
}

/** Whether a limiter id is a clientBucket() result (the ids an unauthenticated client chooses by its address). */
export function isClientBucket(id: string): boolean {
  return id === 'unknown' || id.endsWith('::/64') || /^\d{1,3}(?:\.\d{1,3}){3}$/.test(id);
}

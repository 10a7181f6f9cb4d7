import { randomBytes, safetyNumber } from '@umbra/crypto';
import { Contacts, safetyCodesMatch, type IdentityChange } from './contacts';
import { MemoryStore } from './store';

const A = 'um1aaaa';
const B = 'um1bbbb';

describe('Contacts: identity changes behind a handle (PROTOCOL.md §11)', () => {
  let store: MemoryStore;
  let contacts: Contacts;
  let heard: IdentityChange[];
  let clock: number;

  beforeEach(() => {
    store = new MemoryStore();
    clock = 1000;
    contacts = new Contacts(store, () => clock);
    heard = [];
    contacts.onIdentityChange((c) => heard.push(c));
  });

  it('pins a handle on first use and reports nothing while it keeps naming the same account', async () => {
    expect(await contacts.noteHandle('bob', A)).toBeUndefined();
    expect(await contacts.noteHandle('bob', A)).toBeUndefined();
    expect(heard).toEqual([]);
    expect(await contacts.handlesOf(A)).toEqual(['bob']);
    expect(await contacts.pendingChanges()).toEqual([]);
  });

  it('reports a handle that starts naming another account, clears "verified" for both, and keeps the change until acknowledged', async () => {
    await contacts.noteHandle('bob', A);
    await contacts.markVerified(A, '1'.repeat(60));
    expect(await contacts.verification(A)).toEqual({ accountId: A, safetyNumber: '1'.repeat(60), at: 1000 });
    clock = 2000;
    const change = await contacts.noteHandle('bob', B);
    expect(change).toEqual({ handle: 'bob', previous: A, current: B, at: 2000 });
    expect(heard).toEqual([change]);
    expect(await contacts.verification(A)).toBeUndefined();
    expect(await contacts.handlesOf(B)).toEqual(['bob']);
    expect(await contacts.handlesOf(A)).toEqual([]);
    expect(await contacts.pendingChanges(A)).toEqual([change]);
    expect(await contacts.pendingChanges(B)).toEqual([change]);
    expect(await contacts.pendingChanges('um1other')).toEqual([]);
    // Survives a restart: it is in the store, not in memory.
    expect(await new Contacts(store).pendingChanges()).toEqual([change]);
    await contacts.acknowledge('bob');
    expect(await contacts.pendingChanges()).toEqual([]);
    expect(await contacts.verification(B)).toBeUndefined();
  });

  it('a listener that unsubscribed hears nothing more', async () => {
    const other: IdentityChange[] = [];
    const off = contacts.onIdentityChange((c) => other.push(c));
    await contacts.noteHandle('bob', A);
    off();
    await contacts.noteHandle('bob', B);
    expect(other).toEqual([]);
    expect(heard).toHaveLength(1);
  });

  it('concurrent lookups of a moved handle report the change once', async () => {
    await contacts.noteHandle('bob', A);
    const results = await Promise.all([contacts.noteHandle('bob', B), contacts.noteHandle('bob', B), contacts.noteHandle('bob', B)]);
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(heard).toHaveLength(1);
  });
});

describe('safetyCodesMatch (§11 QR comparison)', () => {
  it('accepts the peer\'s code only when it is ours with the sides swapped', () => {
    // Any 32 bytes stand in for the account keys: the number only hashes them.
    const [a, b, c] = [randomBytes(32), randomBytes(32), randomBytes(32)];
    const ab = safetyNumber(a, b).qr;
    expect(safetyCodesMatch(ab, ` ${safetyNumber(b, a).qr}\n`)).toBe(true);
    expect(safetyCodesMatch(ab, ab)).toBe(false);
    expect(safetyCodesMatch(ab, safetyNumber(c, a).qr)).toBe(false);
    expect(safetyCodesMatch(ab, 'not a code')).toBe(false);
  });
});

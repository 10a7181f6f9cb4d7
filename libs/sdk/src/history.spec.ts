import type { Content } from '@umbra/crypto';
import { History, type HistoryEntry } from './history';
import { MemoryStore } from './store';

const T0 = 1_700_000_000_000;
const content = (id: string, exp?: Content['exp'], ts = T0): Content => ({ v: 1, id, ts, k: 'text', text: id, ...(exp ? { exp } : {}) });
const entry = (c: Content, deleteAt: number | null, envelope?: string): HistoryEntry => ({
  conv: 'peer', id: c.id, from: 'peer', fromDevice: 1, outgoing: false, content: c, serverTimestamp: T0, receivedAt: T0, deleteAt, ...(envelope ? { envelope } : {}),
});

describe('History (§8 deadlines on the device)', () => {
  it('computes deadlines: send mode from the earliest of ts, server time and receipt; read mode bounded by ts + t + 30 d; own read-mode messages count as read', () => {
    expect(History.deadline(content('a'), T0, T0, false)).toBeNull();
    expect(History.deadline(content('a', { t: 60, m: 'send' }), T0 + 5_000, T0 + 9_000, false)).toBe(T0 + 60_000);
    expect(History.deadline(content('a', { t: 60, m: 'send' }, T0 + 2_000), T0, T0 + 9_000, false)).toBe(T0 + 60_000);
    expect(History.deadline(content('a', { t: 60, m: 'read' }), T0, T0, false)).toBe(T0 + 60_000 + 2_592_000_000);
    expect(History.deadline(content('a', { t: 60, m: 'read' }), T0, T0, true)).toBe(T0 + 60_000);
  });

  it('never stores what has already passed, purges on time (telling onExpired once), and a restart keeps enforcing the deadlines', async () => {
    let now = T0;
    const store = new MemoryStore();
    const h = await History.open(store, () => now);
    expect(await h.add(entry(content('late', { t: 1, m: 'send' }), T0))).toBe(false);
    expect(await h.add(entry(content('soon', { t: 10, m: 'send' }), T0 + 10_000))).toBe(true);
    expect(await h.add(entry(content('later', { t: 20, m: 'send' }), T0 + 20_000))).toBe(true);
    expect(await h.add(entry(content('keep'), null))).toBe(true);
    expect((await h.list('peer')).map((e) => e.id)).toEqual(['keep', 'later', 'soon'].sort());
    const expired: { conv: string; id: string }[][] = [];
    h.onExpired((gone) => void expired.push(gone));
    now = T0 + 10_000;
    expect(await h.purgeExpired()).toBe(1);
    expect(await store.get('history/peer/soon')).toBeUndefined();
    expect(await h.purgeExpired()).toBe(0);
    expect(expired).toEqual([[{ conv: 'peer', id: 'soon' }]]);
    h.close();
    now = T0 + 20_000;
    const reopened = await History.open(store, () => now);
    expect((await reopened.list('peer')).map((e) => e.id)).toEqual(['keep']);
    reopened.close();
  });

  it('starts a read-mode timer at first display only, and deletes what the server reports expired', async () => {
    let now = T0;
    const h = await History.open(new MemoryStore(), () => now);
    const read = content('r', { t: 30, m: 'read' });
    await h.add(entry(read, History.deadline(read, T0, T0, false), 'peer:1:cmidR'));
    await h.add(entry(content('s', { t: 3600, m: 'send' }), T0 + 3_600_000, 'peer:1:cmidS'));
    now = T0 + 5_000;
    expect((await h.markRead('peer', 'r'))!.deleteAt).toBe(T0 + 35_000);
    now = T0 + 20_000;
    expect((await h.markRead('peer', 'r'))!.deleteAt).toBe(T0 + 35_000);
    expect(await h.deleteByEnvelopes(['peer:1:cmidS', 'peer:1:unknown'])).toBe(1);
    expect((await h.list('peer')).map((e) => e.id)).toEqual(['r']);
    now = T0 + 35_000;
    expect(await h.list('peer')).toEqual([]);
    h.close();
  });
});

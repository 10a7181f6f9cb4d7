import { LocalState } from '../state/local.state';
import { MemoryStore } from '../store';
import { SeenWindow } from './seen.window';

describe('SeenWindow', () => {
  it('forgets the oldest envelopes beyond its size and writes the window under "seen" on flush', async () => {
    const store = new MemoryStore();
    const seen = new SeenWindow(new LocalState(store), 2);
    for (const key of ['a:1:x', 'a:1:y', 'a:1:z']) seen.remember(key);
    expect([seen.has('a:1:x'), seen.has('a:1:y'), seen.has('a:1:z')]).toEqual([false, true, true]);
    seen.persistSoon();
    await seen.flush();
    expect(JSON.parse((await store.get('seen'))!)).toEqual(['a:1:y', 'a:1:z']);
  });

  it('loads a window an earlier run wrote', async () => {
    const store = new MemoryStore();
    await store.set('seen', '["b:2:q"]');
    const seen = new SeenWindow(new LocalState(store), 10);
    await seen.load();
    expect(seen.has('b:2:q')).toBe(true);
  });
});

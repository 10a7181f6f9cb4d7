import { MemoryStore } from '../store';
import { LocalState, STATE_KEYS } from './local.state';

describe('LocalState', () => {
  it('reads and writes typed entries under the layout the Messenger and History use', async () => {
    const store = new MemoryStore();
    const state = new LocalState(store);
    await state.set(STATE_KEYS.group('g1'), { gid: 'g1', epoch: 2, admin: 'um1a', members: ['um1a', 'um1b'] });
    await state.set(STATE_KEYS.timer('um1b'), { t: 30, m: 'read' });
    expect(JSON.parse((await store.get('group/g1'))!)).toMatchObject({ epoch: 2 });
    expect(await state.get(STATE_KEYS.timer('um1b'))).toEqual({ t: 30, m: 'read' });
    expect(await state.get(STATE_KEYS.ownHandle)).toBeUndefined();
    expect((await state.groups()).map((g) => g.gid)).toEqual(['g1']);
  });

  it('lists conversations from the history and wipes everything in one batch', async () => {
    const store = new MemoryStore();
    await store.batch([['history/um1b/m1', '{}'], ['history/um1b/m2', '{}'], ['history/g1/m3', '{}'], ['identity', '{}']]);
    const state = new LocalState(store);
    expect((await state.conversations()).sort()).toEqual(['g1', 'um1b']);
    expect(await state.wipe()).toBe(4);
    expect(await store.keys('')).toEqual([]);
  });
});

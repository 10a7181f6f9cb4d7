import { b64uEncode } from '@umbra/crypto';
import { createIdentity, serializeIdentity } from '../identity';
import { MemoryStore } from '../store';
import { LocalState, stateWrite } from './local.state';
import { STATE_FAMILIES, STATE_KEYS } from './state.keys';

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

  it('reads stores written under the raw names used before the registry', async () => {
    const identity = createIdentity(1);
    const upload = { v: 1, id: 'att1', key: 'k', salt: 's', size: 5, esize: 40, version: '5', startedAt: 3 };
    const store = new MemoryStore();
    const raw: [string, string][] = [
      ['identity', serializeIdentity(identity)],
      ['token', '{"token":"t","expiresAt":9}'],
      ['seen', '["a:1:x"]'],
      ['seen-content', '["um1a:c1"]'],
      ['umbra/ready', '1'],
      ['settings/read-receipts', 'off'],
      ['history/um1b/c1', '{"conv":"um1b","id":"c1"}'],
      ['timer/um1b', '{"t":30,"m":"send"}'],
      ['outbox/cm1', '{"request":{"clientMessageId":"cm1"},"createdAt":4}'],
      ['session/ab/7', '{"active":"x","archived":[]}'],
      ['list/ab', 'LIST'],
      ['group/g1', '{"gid":"g1","epoch":1}'],
      ['skchain/own/g1', '{"chain":"c","distributed":[]}'],
      ['skchain/in/ab/7/g1/2/3', 'CHAIN'],
      ['contacts/handle/alice', 'um1a'],
      ['contacts/change/alice', '{"handle":"alice","previous":"um1a","current":"um1b","at":5}'],
      ['contacts/verified/um1a', '{"accountId":"um1a","safetyNumber":"1","at":6}'],
      ['prekey/1/5', b64uEncode(new Uint8Array([1, 2, 3]))],
      ['prekey/next-id', '12'],
      ['prekey/signed', '{"current":[],"retired":[]}'],
      ['replay/5/h1', '77'],
      ['kt/own-handle', 'alice'],
      ['kt/trust', '{"logPublicKey":"l","witnesses":[],"quorum":0}'],
      ['kt/sth', '{"sth":"s"}'],
      ['kt/label/1/ab', '{"version":1,"valueHash":"h","leafIndex":2}'],
      ['kt/evidence/1/ab', 'EV'],
      ['kt/monitor/1/ab', '{"next":3,"version":1}'],
      ['kt/published/4', 'HASH'],
      ['kt/incidents', '[]'],
      ['attachment-upload/u1', JSON.stringify(upload)],
    ];
    await store.batch(raw);
    const state = new LocalState(store);
    expect(await state.get(STATE_KEYS.identity)).toBe(serializeIdentity(identity));
    expect(await state.get(STATE_KEYS.token)).toEqual({ token: 't', expiresAt: 9 });
    expect(await state.get(STATE_KEYS.seenEnvelopes)).toEqual(['a:1:x']);
    expect(await state.get(STATE_KEYS.seenContent)).toEqual(['um1a:c1']);
    expect(await state.get(STATE_KEYS.ready)).toBe('1');
    expect(await state.get(STATE_KEYS.readReceipts)).toBe(false);
    expect(await state.get(STATE_KEYS.history('um1b', 'c1'))).toMatchObject({ id: 'c1' });
    expect(await state.get(STATE_KEYS.timer('um1b'))).toEqual({ t: 30, m: 'send' });
    expect(await state.get(STATE_KEYS.outbox('cm1'))).toMatchObject({ createdAt: 4 });
    expect(await state.get(STATE_KEYS.session('ab', 7))).toMatchObject({ active: 'x' });
    expect(await state.get(STATE_KEYS.deviceList('ab'))).toBe('LIST');
    expect(await state.get(STATE_KEYS.group('g1'))).toMatchObject({ epoch: 1 });
    expect(await state.get(STATE_KEYS.ownChain('g1'))).toMatchObject({ chain: 'c' });
    expect(await state.get(STATE_KEYS.inChain('ab', 7, 'g1', 2, 3))).toBe('CHAIN');
    expect(await state.get(STATE_KEYS.contactHandle('alice'))).toBe('um1a');
    expect(await state.get(STATE_KEYS.contactChange('alice'))).toMatchObject({ current: 'um1b' });
    expect(await state.get(STATE_KEYS.contactVerified('um1a'))).toMatchObject({ safetyNumber: '1' });
    expect(await state.get(STATE_KEYS.prekey(1, 5))).toEqual(new Uint8Array([1, 2, 3]));
    expect(await state.get(STATE_KEYS.prekeyNextId)).toBe(12);
    expect(await state.get(STATE_KEYS.prekeySigned)).toEqual({ current: [], retired: [] });
    expect(await state.get(STATE_KEYS.replay(5, 'h1'))).toBe(77);
    expect(await state.get(STATE_KEYS.ownHandle)).toBe('alice');
    expect(await state.get(STATE_KEYS.ktTrust)).toMatchObject({ logPublicKey: 'l' });
    expect(await state.get(STATE_KEYS.ktSth)).toEqual({ sth: 's' });
    expect(await state.get(STATE_KEYS.ktLabel(1, 'ab'))).toMatchObject({ leafIndex: 2 });
    expect(await state.get(STATE_KEYS.ktEvidence(1, 'ab'))).toBe('EV');
    expect(await state.get(STATE_KEYS.ktMonitor(1, 'ab'))).toEqual({ next: 3, version: 1 });
    expect(await state.get(STATE_KEYS.ktPublished(4))).toBe('HASH');
    expect(await state.get(STATE_KEYS.ktIncidents)).toEqual([]);
    expect(await state.get(STATE_KEYS.upload('u1'))).toEqual(upload);
    expect((await state.entries(STATE_FAMILIES.upload)).map((e) => e.suffix)).toEqual(['u1']);
    expect(await state.suffixes(STATE_FAMILIES.replay(5))).toEqual(['h1']);
    expect(await state.suffixes(STATE_FAMILIES.prekey(1))).toEqual(['5']);
  });

  it('writes under the same raw names, singly and in batches', async () => {
    const store = new MemoryStore();
    const state = new LocalState(store);
    await state.set(STATE_KEYS.readReceipts, true);
    await state.set(STATE_KEYS.prekeyNextId, 4);
    await state.batch([stateWrite(STATE_KEYS.contactHandle('bob'), 'um1b'), stateWrite(STATE_KEYS.contactVerified('um1b'), undefined)]);
    expect(await store.get('settings/read-receipts')).toBe('on');
    expect(await store.get('prekey/next-id')).toBe('4');
    expect(await store.get('contacts/handle/bob')).toBe('um1b');
  });

  it('reads an upload state it does not accept as absent', async () => {
    const store = new MemoryStore();
    await store.batch([['attachment-upload/a', '{"v":2}'], ['attachment-upload/b', 'not json']]);
    const state = new LocalState(store);
    expect(await state.get(STATE_KEYS.upload('a'))).toBeUndefined();
    expect(await state.entries(STATE_FAMILIES.upload)).toEqual([]);
  });
});

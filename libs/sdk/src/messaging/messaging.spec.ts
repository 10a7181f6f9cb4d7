import type { Content } from '@umbra/crypto';
import type { DeliveredEnvelope } from '@umbra/protocol';
import type { Timer } from '../history';
import { MemoryStore, StoreTransaction } from '../store';
import type { MessagingContext } from './messaging.context';
import { LocalState } from '../state/local.state';
import { STATE_KEYS } from '../state/state.keys';
import { ANNOTATION_KINDS, USER_KINDS, conversationOf, type ReceivedMessage } from './messaging.types';
import { MessengerEvents } from './messenger.events';
import { TimersService } from './timers.service';

const content = (k: string, extra: Partial<Content> = {}): Content => ({ v: 1, id: 'c1', ts: 1, k, ...extra }) as Content;
const received = (c: Content, extra: Partial<ReceivedMessage> = {}): ReceivedMessage => ({ from: 'um1alice', fromDevice: 1, content: c, sync: false, verified: true, serverTimestamp: 1, ...extra });

describe('Messenger parts', () => {
  it('only texts and files are user messages (kept, timed); call signalling is control', () => {
    expect([...USER_KINDS].sort()).toEqual(['att', 'text']);
    expect(USER_KINDS.has('call')).toBe(false);
    expect(ANNOTATION_KINDS.has('call')).toBe(false);
  });

  it('places a received content in its group, the account a sync copy went to, or the sender', () => {
    expect(conversationOf(received(content('text', { gid: 'g1' })))).toBe('g1');
    expect(conversationOf(received(content('text'), { sync: true, dest: 'um1bob' }))).toBe('um1bob');
    expect(conversationOf(received(content('text'), { sync: true }))).toBeUndefined();
    expect(conversationOf(received(content('text')))).toBe('um1alice');
  });

  it('hands a message to every handler; one that throws becomes an error event and the rest still run', async () => {
    const events = new MessengerEvents();
    const env = { id: 'e1' } as DeliveredEnvelope;
    const heard: string[] = [];
    const errors: unknown[] = [];
    events.on('message', () => {
      throw new Error('app bug');
    });
    events.on('message', (m) => void heard.push(m.content.id));
    events.on('error', (err, e) => void errors.push([(err as Error).message, e.id]));
    await events.deliver(received(content('text')), env);
    expect(heard).toEqual(['c1']);
    expect(errors).toEqual([['app bug', 'e1']]);
  });

  it('timers: a change is stored and told once, an invalid exp_set turns the timer off, and a batch holds the write until commit', async () => {
    const store = new MemoryStore();
    const events = new MessengerEvents();
    const told: [string, Timer | null][] = [];
    events.on('timer', (conv, t) => void told.push([conv, t]));
    const timers = new TimersService({ store, now: () => 5, events } as unknown as MessagingContext);
    await timers.save('um1bob', { t: 60, m: 'send' });
    await timers.save('um1bob', { t: 60, m: 'send' });
    expect(await timers.get('um1bob')).toEqual({ t: 60, m: 'send' });
    expect(await new LocalState(store).get(STATE_KEYS.timer('um1bob'))).toEqual({ t: 60, m: 'send' });
    expect(timers.announcement({ t: 60, m: 'read' }, 'g1')).toMatchObject({ k: 'exp_set', gid: 'g1', t: 60, m: 'read', ts: 5 });
    expect(timers.announcement(null)).toMatchObject({ k: 'exp_set', t: 0, m: 'send' });
    expect(timers.announcement(null)).not.toHaveProperty('gid');

    const tx = new StoreTransaction(store);
    await timers.applyAnnouncement('um1bob', content('exp_set', { t: -3 }), tx);
    expect(await timers.get('um1bob')).toEqual({ t: 60, m: 'send' });
    await tx.commit();
    expect(await timers.get('um1bob')).toBeNull();
    await timers.applyAnnouncement('um1bob', content('exp_set', { t: 30, m: 'read' }), store);
    expect(told).toEqual([['um1bob', { t: 60, m: 'send' }], ['um1bob', null], ['um1bob', { t: 30, m: 'read' }]]);
  });

  it('keeps the store layout other code and existing stores use', () => {
    expect(STATE_KEYS.session('ab', 7).name).toBe('session/ab/7');
    expect(STATE_KEYS.deviceList('ab').name).toBe('list/ab');
    expect(STATE_KEYS.seenContent.name).toBe('seen-content');
    expect(STATE_KEYS.group('g').name).toBe('group/g');
    expect(STATE_KEYS.ownChain('g').name).toBe('skchain/own/g');
    expect(STATE_KEYS.inChain('ab', 7, 'g', 2, 3).name).toBe('skchain/in/ab/7/g/2/3');
    expect(STATE_KEYS.timer('um1bob').name).toBe('timer/um1bob');
  });
});

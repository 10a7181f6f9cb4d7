import type { Content } from '@umbra/crypto';
import type { ReceivedMessage } from '@umbra/sdk';
import { describeReceived } from './listen.command';

const received = (fields: Partial<Content> & { k: Content['k'] }): ReceivedMessage => ({
  from: 'um1peer',
  fromDevice: 1,
  content: { v: 1, id: 'id', ts: 0, ...fields },
  sync: false,
  verified: true,
  serverTimestamp: 0,
});

describe('what listen prints for a received message', () => {
  it('shows what a person did', () => {
    expect(describeReceived(received({ k: 'text', text: 'hi' }), undefined)).toBe('hi');
    expect(describeReceived(received({ k: 'att' }), { name: 'a.txt', oid: 'o', size: 2048 })).toBe('sent a file: a.txt (2.0 KiB)');
    expect(describeReceived(received({ k: 'edit', target: 't', text: 'fixed' }), undefined)).toBe('edited a message: fixed');
    expect(describeReceived(received({ k: 'react', target: 't', emoji: '👍' }), undefined)).toBe('reacted 👍');
    expect(describeReceived(received({ k: 'react', target: 't', emoji: '' }), undefined)).toBe('removed a reaction');
    expect(describeReceived(received({ k: 'del', target: 't' }), undefined)).toBe('deleted a message for everyone');
  });

  it('prints nothing for control content', () => {
    for (const op of ['offer', 'answer', 'ice', 'select_answer', 'hangup', 'reject', 'busy']) expect(describeReceived(received({ k: 'call', op }), undefined)).toBeUndefined();
    for (const k of ['rcpt', 'typing', 'grp', 'skdm', 'sync', 'retry', 'exp_set'] as const) expect(describeReceived(received({ k }), undefined)).toBeUndefined();
  });
});

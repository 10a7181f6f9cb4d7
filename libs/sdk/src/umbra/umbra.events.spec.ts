import type { Content } from '@umbra/crypto';
import type { ReceivedMessage } from '../messenger';
import { UmbraEvents, envelopeKey, groupEvent, receiptEvent, receivedEvent, typingEvent, type UmbraEvent } from './umbra.events';

const ALICE = 'um1alice';

function received(content: Partial<Content>, extra: Partial<ReceivedMessage> = {}): ReceivedMessage {
  return { from: ALICE, fromDevice: 7, content: { v: 1, id: 'c1', ts: 1, k: 'text', ...content } as Content, sync: false, verified: true, serverTimestamp: 2, conv: ALICE, ...extra };
}

describe('front-door event mapping', () => {
  it('a text or file is a message event in its conversation', () => {
    for (const k of ['text', 'att'] as const) {
      const m = received({ k, text: 'hi' }, { conv: 'group-1' });
      expect(receivedEvent(m)).toEqual({ type: 'message', conv: 'group-1', message: m });
    }
  });

  it('react, edit and del are update events naming their target and author', () => {
    for (const kind of ['react', 'edit', 'del'] as const) {
      const m = received({ k: kind, target: 'orig', emoji: '👍' });
      expect(receivedEvent(m)).toEqual({ type: 'update', conv: ALICE, kind, target: 'orig', from: ALICE, message: m });
    }
  });

  it('drops what it cannot place or is control: no conversation, an update without a target, group state, receipts', () => {
    expect(receivedEvent(received({ k: 'text' }, { conv: undefined }))).toBeUndefined();
    expect(receivedEvent(received({ k: 'edit', text: 'x' }))).toBeUndefined();
    expect(receivedEvent(received({ k: 'grp', members: [] }))).toBeUndefined();
    expect(receivedEvent(received({ k: 'rcpt', ids: ['c0'] }))).toBeUndefined();
    // Call signalling is never a message: it is not stored and does not touch the conversation's timer.
    expect(receivedEvent(received({ k: 'call', t: 'offer' }, { conv: 'group-1' }))).toBeUndefined();
  });

  it('a group state message is a group event naming the group and its admin; nothing else is', () => {
    expect(groupEvent(received({ k: 'grp', gid: 'group-1', members: [ALICE], epoch: 2 }, { conv: undefined }))).toEqual({ type: 'group', gid: 'group-1', from: ALICE });
    expect(groupEvent(received({ k: 'grp', members: [] }, { conv: undefined }))).toBeUndefined();
    expect(groupEvent(received({ k: 'text', gid: 'group-1', text: 'hi' }))).toBeUndefined();
  });

  it('maps typing and expiry receipts field by field', () => {
    expect(typingEvent({ from: ALICE, fromDeviceId: 3, state: 'started' })).toEqual({ type: 'typing', from: ALICE, device: 3, state: 'started', conv: ALICE });
    expect(typingEvent({ from: ALICE, fromDeviceId: 3, state: 'stopped', gid: 'G'.repeat(22) }, 'G'.repeat(22))).toMatchObject({ conv: 'G'.repeat(22) });
    expect(receiptEvent({ k: 'expired', clientMessageId: 'cm', expiresAt: 9, accountIds: ['um1bob'] })).toEqual({
      type: 'receipt', kind: 'expired-unread', clientMessageId: 'cm', accountIds: ['um1bob'], expiresAt: 9,
    });
    expect(receiptEvent({ conv: 'um1bob', from: 'um1bob', kind: 'read', ids: ['c1'], at: 5 })).toEqual({ type: 'receipt', kind: 'read', conv: 'um1bob', from: 'um1bob', ids: ['c1'], at: 5 });
  });

  it('keys envelopes the way the history indexes them', () => {
    expect(envelopeKey({ senderAccountId: ALICE, senderDeviceId: 7, clientMessageId: 'cm' })).toBe('um1alice:7:cm');
  });
});

describe('UmbraEvents', () => {
  const typing: UmbraEvent = { type: 'typing', from: ALICE, device: 1, state: 'started', conv: ALICE };
  const timer: UmbraEvent = { type: 'timer', conv: ALICE, timer: null };

  it('calls each handler once per event of its type, until it is turned off', () => {
    const events = new UmbraEvents();
    const seen: string[] = [];
    const off = events.on('typing', (e) => void seen.push(`typing:${e.state}`));
    events.on('timer', (e) => void seen.push(`timer:${e.conv}`));
    events.onAny((e) => void seen.push(`any:${e.type}`));
    events.emit(typing);
    events.emit(timer);
    off();
    events.emit(typing);
    expect(seen).toEqual(['typing:started', 'any:typing', 'timer:um1alice', 'any:timer', 'any:typing']);
  });

  it('once hears one event', () => {
    const events = new UmbraEvents();
    let n = 0;
    events.once('typing', () => void n++);
    events.emit(typing);
    events.emit(typing);
    expect(n).toBe(1);
  });

  it('a throwing or rejecting handler becomes an error event and does not stop the others', async () => {
    const events = new UmbraEvents();
    const errors: unknown[] = [];
    let after = 0;
    events.on('error', (e) => void errors.push(e.source === 'handler' && e.error));
    events.on('typing', () => {
      throw new Error('sync');
    });
    events.on('typing', async () => {
      throw new Error('async');
    });
    events.on('typing', () => void after++);
    events.emit(typing);
    await new Promise((r) => setImmediate(r));
    expect(after).toBe(1);
    expect(errors.map((e) => (e as Error).message).sort()).toEqual(['async', 'sync']);
  });

  it('an error handler that throws is dropped, not looped', () => {
    const events = new UmbraEvents();
    let calls = 0;
    events.on('error', () => {
      calls++;
      throw new Error('again');
    });
    events.emit({ type: 'error', source: 'receive', error: new Error('x') });
    expect(calls).toBe(1);
  });

  it('next resolves with the first matching event and times out otherwise', async () => {
    const events = new UmbraEvents();
    const p = events.next('typing', (e) => e.state === 'stopped');
    events.emit(typing);
    events.emit({ ...typing, state: 'stopped' } as UmbraEvent);
    await expect(p).resolves.toMatchObject({ state: 'stopped' });
    await expect(events.next('timer', undefined, 10)).rejects.toThrow('no timer event within 10 ms');
  });
});

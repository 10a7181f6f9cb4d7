import type { ExpiryReceipt } from '@umbra/protocol';
import { CallSignalIds, type CallInfo, type CallState, type EndReason } from '../calls';
import { MemoryStore } from '../store';
import { forwardCallEvents, forwardExpiryReceipts, type CallsEventSource } from './calls.part';
import type { UmbraEventOf } from './umbra.events';

/** The calls module's three events, driven by hand. */
class CallsStub implements CallsEventSource {
  readonly calls: CallInfo[] = [];
  private readonly handlers = { incoming: new Set<(c: CallInfo) => void>(), state: new Set<(id: string, s: CallState) => void>(), ended: new Set<(id: string, r: EndReason) => void>() };
  on(event: 'incoming', handler: (call: CallInfo) => void): () => void;
  on(event: 'state', handler: (callId: string, state: CallState) => void): () => void;
  on(event: 'ended', handler: (callId: string, reason: EndReason) => void): () => void;
  on(event: keyof CallsStub['handlers'], handler: (...args: never[]) => void): () => void {
    const set = this.handlers[event] as Set<typeof handler>;
    set.add(handler);
    return () => void set.delete(handler);
  }
  active(): CallInfo[] {
    return this.calls;
  }
  incoming(c: CallInfo): void {
    this.handlers.incoming.forEach((h) => h(c));
  }
  state(id: string, s: CallState): void {
    this.handlers.state.forEach((h) => h(id, s));
  }
  ended(id: string, r: EndReason): void {
    this.handlers.ended.forEach((h) => h(id, r));
  }
}

const BOB = 'um1bob';

describe('front-door call events', () => {
  it('an incoming call rings, connects and ends once with its reason', () => {
    const stub = new CallsStub();
    const events: UmbraEventOf<'call'>[] = [];
    forwardCallEvents(stub, (e) => events.push(e));
    const info: CallInfo = { callId: 'c1', peer: BOB, media: 'video', direction: 'incoming', state: 'ringing' };
    stub.incoming(info);
    stub.state('c1', 'ringing');
    stub.state('c1', 'connecting');
    stub.state('c1', 'connected');
    stub.state('c1', 'ended');
    stub.ended('c1', 'remote_hangup');
    const base = { type: 'call', callId: 'c1', peer: BOB, media: 'video', direction: 'incoming' };
    expect(events).toEqual([
      { ...base, state: 'ringing' },
      { ...base, state: 'connecting' },
      { ...base, state: 'connected' },
      { ...base, state: 'ended', reason: 'remote_hangup' },
    ]);
  });

  it('an outgoing call is found among the active calls; a declined one ends with declined', () => {
    const stub = new CallsStub();
    const events: UmbraEventOf<'call'>[] = [];
    forwardCallEvents(stub, (e) => events.push(e));
    stub.calls.push({ callId: 'c2', peer: BOB, media: 'audio', direction: 'outgoing', state: 'outgoing' });
    stub.state('c2', 'outgoing');
    stub.calls.pop();
    stub.state('c2', 'ended');
    stub.ended('c2', 'declined');
    expect(events.map((e) => [e.state, e.reason, e.direction])).toEqual([
      ['outgoing', undefined, 'outgoing'],
      ['ended', 'declined', 'outgoing'],
    ]);
  });

  it('signals of calls it never saw produce nothing; after stopping, nothing more is emitted', () => {
    const stub = new CallsStub();
    const events: UmbraEventOf<'call'>[] = [];
    const stop = forwardCallEvents(stub, (e) => events.push(e));
    stub.state('ghost', 'connected');
    stub.ended('ghost', 'failed');
    expect(events).toEqual([]);
    stop();
    stub.incoming({ callId: 'c3', peer: BOB, media: 'audio', direction: 'incoming', state: 'ringing' });
    stub.state('c3', 'ringing');
    expect(events).toEqual([]);
  });
});

describe('expiry receipts and call signals', () => {
  const receipt = (clientMessageId: string): ExpiryReceipt => ({ k: 'expired', clientMessageId, expiresAt: 1, accountIds: [BOB] });

  it('a receipt for a call signal this account sent is dropped; a chat message\'s receipt is passed on', async () => {
    const store = new MemoryStore();
    const ids = new CallSignalIds(store);
    await ids.add('offer-1');
    let handler: ((r: ExpiryReceipt) => void) | undefined;
    const emitted: string[] = [];
    forwardExpiryReceipts({ on: (_e, h) => void (handler = h) }, new CallSignalIds(store), (r) => void emitted.push(r.clientMessageId));
    handler!(receipt('offer-1'));
    handler!(receipt('chat-1'));
    await new Promise((r) => setTimeout(r, 10));
    expect(emitted).toEqual(['chat-1']);
  });

  it('signal ids are kept a day, then pruned', async () => {
    const store = new MemoryStore();
    let now = 1_000_000;
    const ids = new CallSignalIds(store, () => now);
    await ids.add('old');
    now += 25 * 3600_000;
    await ids.add('new');
    expect([await ids.has('old'), await ids.has('new'), await ids.has('never')]).toEqual([false, true, false]);
  });
});

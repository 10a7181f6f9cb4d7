import fc from 'fast-check';
import type { Content } from '@umbra/crypto';
import { CallSignalError, parseCallSignal, type CallSignal } from './call-signal';
import { CallMachine, RING_MS, type CallEffect } from './call.machine';

const KEY = 'A'.repeat(43);
const HASH = 'H'.repeat(43);
const CALL = '00000000000000aa';

/** One caller device and `n` callee devices of one account, linked by a network that delivers in any order. */
class World {
  now = 1_000_000;
  caller: CallMachine;
  callees: (CallMachine | undefined)[];
  readonly pending: { from: number; to: number; signal: CallSignal; own: boolean; at: number }[] = [];
  /** Callee devices that processed a select_answer naming another device. */
  readonly toldElsewhere = new Set<number>();
  readonly ignored: string[] = [];

  constructor(readonly n: number) {
    const { call, effects } = CallMachine.place({ callId: CALL, partyId: 'caller-party', media: 'video', sdp: 'v=0 offer', E_c: KEY, offerHash: HASH, now: this.now });
    this.caller = call;
    this.callees = Array.from({ length: n }, () => undefined);
    this.apply(-1, effects);
  }

  /** Device -1 is the caller; 0..n-1 the callee's devices. */
  apply(device: number, effects: CallEffect[]): void {
    for (const e of effects) {
      if (e.kind === 'ignored') this.ignored.push(e.reason);
      if (e.kind !== 'send') continue;
      if (device === -1) {
        if (e.to === 'peer') for (let i = 0; i < this.n; i++) this.pending.push({ from: -1, to: i, signal: e.signal, own: false, at: this.now });
      } else if (e.to === 'peer') this.pending.push({ from: device, to: -1, signal: e.signal, own: false, at: this.now });
      else for (let i = 0; i < this.n; i++) if (i !== device) this.pending.push({ from: device, to: i, signal: e.signal, own: true, at: this.now });
    }
  }

  deliver(index: number): void {
    if (this.pending.length === 0) return;
    const [m] = this.pending.splice(index % this.pending.length, 1);
    const { to, signal, own, at } = m!;
    if (to === -1) return this.apply(-1, this.caller.receiveSignal(signal, own ? 'own' : 'peer'));
    const mine = this.callees[to];
    if (!mine) {
      if (signal.op !== 'offer') return; // a device with no call yet: nothing to stop
      const { call, effects } = CallMachine.receive(signal, { partyId: `party-${to}-xxxx`, offerHash: HASH, sentAt: at, now: this.now });
      this.callees[to] = call;
      return this.apply(to, effects);
    }
    if (signal.op === 'select_answer' && signal.selected_party_id !== mine.partyId) this.toldElsewhere.add(to);
    this.apply(to, mine.receiveSignal(signal, own ? 'own' : 'peer'));
  }

  act(a: Action): void {
    const callee = (i: number) => this.callees[i % this.n];
    switch (a.t) {
      case 'deliver':
        return this.deliver(a.i);
      case 'answer': {
        const c = callee(a.i);
        if (c) this.apply(a.i % this.n, c.answer('v=0 answer', KEY));
        return;
      }
      case 'decline': {
        const c = callee(a.i);
        if (c) this.apply(a.i % this.n, c.decline());
        return;
      }
      case 'hangup': {
        if (a.i < 0) return this.apply(-1, this.caller.hangup());
        const c = callee(a.i);
        if (c) this.apply(a.i % this.n, c.hangup());
        return;
      }
      case 'media': {
        if (a.i < 0) return this.apply(-1, this.caller.mediaConnected());
        const c = callee(a.i);
        if (c) this.apply(a.i % this.n, c.mediaConnected());
        return;
      }
      case 'tick':
        this.now += a.ms;
        this.apply(-1, this.caller.tick(this.now));
        this.callees.forEach((c, i) => c && this.apply(i, c.tick(this.now)));
    }
  }

  invariants(): void {
    const selected = this.callees.filter((c) => c?.selectedParty !== undefined && c.selectedParty === c.partyId);
    expect(selected.length).toBeLessThanOrEqual(1);
    for (const c of this.callees) {
      if (c?.state === 'connected') expect(c.partyId).toBe(this.caller.selectedParty);
    }
    expect(this.callees.filter((c) => c?.state === 'connected').length).toBeLessThanOrEqual(1);
    if (this.caller.state === 'connected' || this.caller.state === 'connecting') expect(this.caller.selectedParty).toBeDefined();
    for (const i of this.toldElsewhere) expect(this.callees[i]!.state).not.toBe('ringing');
  }
}

type Action = { t: 'deliver'; i: number } | { t: 'answer' | 'decline' | 'hangup' | 'media'; i: number } | { t: 'tick'; ms: number };
const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 6, arbitrary: fc.nat(50).map((i) => ({ t: 'deliver' as const, i })) },
  { weight: 2, arbitrary: fc.nat(2).map((i) => ({ t: 'answer' as const, i })) },
  { weight: 1, arbitrary: fc.nat(2).map((i) => ({ t: 'decline' as const, i })) },
  { weight: 1, arbitrary: fc.integer({ min: -1, max: 2 }).map((i) => ({ t: 'hangup' as const, i })) },
  { weight: 2, arbitrary: fc.integer({ min: -1, max: 2 }).map((i) => ({ t: 'media' as const, i })) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 20_000 }).map((ms) => ({ t: 'tick' as const, ms })) },
);

describe('CallMachine (one caller, three callee devices, any interleaving)', () => {
  it('never two connected calls, nothing rings after it was answered elsewhere, and every device ends', () => {
    fc.assert(
      fc.property(fc.array(action, { maxLength: 60 }), (actions) => {
        const w = new World(3);
        for (const a of actions) {
          w.act(a);
          w.invariants();
        }
        // Whatever happened, the call ends everywhere once everything is delivered and someone hangs up or time passes.
        while (w.pending.length) w.deliver(0);
        w.act({ t: 'tick', ms: RING_MS + 1 });
        w.act({ t: 'hangup', i: -1 });
        for (let i = 0; i < 3; i++) w.act({ t: 'hangup', i });
        while (w.pending.length) w.deliver(0);
        w.invariants();
        expect(w.caller.state).toBe('ended');
        for (const c of w.callees) if (c) expect(c.state).toBe('ended');
      }),
      { numRuns: 500 },
    );
  });
});

describe('CallMachine rules', () => {
  const deliverAll = (w: World) => {
    while (w.pending.length) w.deliver(0);
  };

  it('answer on one device: the caller selects it, the others stop ringing ("answered elsewhere")', () => {
    const w = new World(3);
    deliverAll(w);
    expect(w.callees.map((c) => c!.state)).toEqual(['ringing', 'ringing', 'ringing']);
    w.act({ t: 'answer', i: 1 });
    deliverAll(w);
    expect(w.caller.selectedParty).toBe(w.callees[1]!.partyId);
    expect(w.callees.map((c) => c!.state)).toEqual(['ended', 'connecting', 'ended']);
    expect([w.callees[0]!.endReason, w.callees[2]!.endReason]).toEqual(['answered_elsewhere', 'answered_elsewhere']);
    w.act({ t: 'media', i: 1 });
    w.act({ t: 'media', i: -1 });
    expect([w.caller.state, w.callees[1]!.state]).toEqual(['connected', 'connected']);
    w.act({ t: 'hangup', i: 1 });
    deliverAll(w);
    expect([w.caller.state, w.caller.endReason]).toEqual(['ended', 'remote_hangup']);
  });

  it('two devices answer: the first answer wins, the second is told it was answered elsewhere', () => {
    const w = new World(2);
    deliverAll(w);
    w.act({ t: 'answer', i: 0 });
    w.act({ t: 'answer', i: 1 });
    deliverAll(w);
    expect(w.callees.map((c) => c!.state)).toEqual(['connecting', 'ended']);
    expect(w.callees[1]!.endReason).toBe('answered_elsewhere');
  });

  it('decline on one device stops every device and tells the caller', () => {
    const w = new World(3);
    deliverAll(w);
    w.act({ t: 'decline', i: 2 });
    deliverAll(w);
    expect(w.callees.map((c) => c!.endReason)).toEqual(['declined_elsewhere', 'declined_elsewhere', 'declined']);
    expect(w.caller.endReason).toBe('declined');
  });

  it('rings for 30 s, then a missed call on every device and "no answer" for the caller', () => {
    const w = new World(2);
    deliverAll(w);
    w.act({ t: 'tick', ms: RING_MS - 1 });
    expect(w.callees.map((c) => c!.state)).toEqual(['ringing', 'ringing']);
    w.act({ t: 'tick', ms: 2 });
    expect(w.callees.map((c) => c!.endReason)).toEqual(['missed', 'missed']);
    expect(w.caller.endReason).toBe('no_answer');
  });

  it('an offer older than the ring time (a device that comes online late) is a missed call and never rings', () => {
    const offer = parseCallSignal(content({ op: 'offer', call_id: CALL, party_id: 'caller-party', media: 'audio', sdp: 'v=0', E_c: KEY }));
    const { call, effects } = CallMachine.receive(offer as Extract<CallSignal, { op: 'offer' }>, { partyId: 'late-device', offerHash: HASH, sentAt: 0, now: RING_MS + 1 });
    expect(call.endReason).toBe('missed');
    expect(effects.some((e) => e.kind === 'ring')).toBe(false);
  });

  it('busy ends the call for the caller; a caller who hangs up before an answer makes every device show a missed call', () => {
    const w = new World(2);
    deliverAll(w);
    w.apply(0, [{ kind: 'send', to: 'peer', signal: { op: 'busy', call_id: CALL, party_id: w.callees[0]!.partyId } }]);
    deliverAll(w);
    expect(w.caller.endReason).toBe('busy');
    const v = new World(2);
    deliverAll(v);
    v.act({ t: 'hangup', i: -1 });
    deliverAll(v);
    expect(v.callees.map((c) => c!.endReason)).toEqual(['missed', 'missed']);
  });

  it('ignores, with a reason: an answer to another offer, ICE from a device not in the call, ICE for an ended call, a signal from a device that did not place the call', () => {
    const w = new World(1);
    deliverAll(w);
    const wrong: CallSignal = { op: 'answer', call_id: CALL, party_id: 'party-0-xxxx', sdp: 'v=0', E_r: KEY, offer_hash: 'X'.repeat(43) };
    expect(w.caller.receiveSignal(wrong, 'peer')).toEqual([{ kind: 'ignored', reason: 'answer to another offer (offer_hash mismatch)' }]);
    expect(w.caller.state).toBe('outgoing');
    expect(w.caller.receiveSignal({ op: 'ice', call_id: CALL, party_id: 'stranger-1', candidates: [], end: true }, 'peer')[0]!.kind).toBe('ignored');
    expect(w.callees[0]!.receiveSignal({ op: 'hangup', call_id: CALL, party_id: 'not-the-caller', reason: 'hangup' }, 'peer')[0]!.kind).toBe('ignored');
    expect(w.callees[0]!.state).toBe('ringing');
    // A callee sends no ICE before it answers (its address stays private until it accepts).
    expect(w.callees[0]!.localIce(['candidate:1'], false)[0]!.kind).toBe('ignored');
    w.act({ t: 'hangup', i: -1 });
    expect(w.caller.receiveSignal({ op: 'ice', call_id: CALL, party_id: 'party-0-xxxx', candidates: ['c'], end: false }, 'peer')).toEqual([{ kind: 'ignored', reason: 'ice for an ended call' }]);
  });

  it('glare: both sides compute the same winner, the smaller call_id', () => {
    expect(CallMachine.glareWinner('00000000000000ff', '0000000000000100')).toBe('00000000000000ff');
    expect(CallMachine.glareWinner('0000000000000100', '00000000000000ff')).toBe('00000000000000ff');
  });
});

function content(fields: Record<string, unknown>): Content {
  return { v: 1, id: 'x', ts: 1, k: 'call', ...fields };
}

describe('parseCallSignal', () => {
  it('accepts each op and refuses malformed signals with a reason, never another error', () => {
    expect(parseCallSignal(content({ op: 'reject', call_id: CALL, party_id: 'abcdefgh' }))).toEqual({ op: 'reject', call_id: CALL, party_id: 'abcdefgh' });
    expect(parseCallSignal(content({ op: 'hangup', call_id: CALL, party_id: 'abcdefgh', reason: 'weird' }))).toMatchObject({ reason: 'hangup' });
    const bad: Record<string, unknown>[] = [
      { op: 'offer', call_id: 'XYZ', party_id: 'abcdefgh' },
      { op: 'offer', call_id: CALL, party_id: 'abcdefgh', media: 'hologram', sdp: 'v=0', E_c: KEY },
      { op: 'offer', call_id: CALL, party_id: 'abcdefgh', media: 'audio', sdp: '', E_c: KEY },
      { op: 'answer', call_id: CALL, party_id: 'abcdefgh', sdp: 'v=0', E_r: KEY },
      { op: 'ice', call_id: CALL, party_id: 'abcdefgh', candidates: 'c' },
      { op: 'ice', call_id: CALL, party_id: 'abcdefgh', candidates: Array(65).fill('c') },
      { op: 'teleport', call_id: CALL, party_id: 'abcdefgh' },
      { op: 'reject', call_id: CALL, party_id: 'a b' },
    ];
    for (const b of bad) expect(() => parseCallSignal(content(b))).toThrow(CallSignalError);
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom('op', 'call_id', 'party_id', 'media', 'sdp', 'E_c', 'E_r', 'offer_hash', 'candidates', 'end', 'reason', 'selected_party_id'), fc.anything()), (fields) => {
        try {
          parseCallSignal(content(fields));
        } catch (err) {
          expect(err).toBeInstanceOf(CallSignalError);
        }
      }),
    );
  });
});

describe('reconnect after a network blip (ICE restart)', () => {
  const T0 = 5_000_000;
  /** A caller and one callee device, connected. */
  function connected(): { caller: CallMachine; callee: CallMachine } {
    const { call: caller, effects } = CallMachine.place({ callId: CALL, partyId: 'caller-party', media: 'audio', sdp: 'v=0 offer', E_c: KEY, offerHash: HASH, now: T0 });
    const offer = effects.find((e): e is Extract<CallEffect, { kind: 'send' }> => e.kind === 'send')!.signal as Extract<CallSignal, { op: 'offer' }>;
    const { call: callee } = CallMachine.receive(offer, { partyId: 'callee-party', offerHash: HASH, sentAt: T0, now: T0 });
    const answer = callee.answer('v=0 answer', KEY).find((e): e is Extract<CallEffect, { kind: 'send' }> => e.kind === 'send')!.signal;
    const select = caller.receiveSignal(answer, 'peer').find((e): e is Extract<CallEffect, { kind: 'send' }> => e.kind === 'send')!.signal;
    callee.receiveSignal(select, 'peer');
    caller.mediaConnected();
    callee.mediaConnected();
    expect([caller.state, callee.state]).toEqual(['connected', 'connected']);
    return { caller, callee };
  }
  const sent = (effects: CallEffect[]) => effects.flatMap((e) => (e.kind === 'send' ? [e.signal] : []));

  it('the caller restarts ICE with a new offer for the same call; the callee answers it; both return to connected', () => {
    const { caller, callee } = connected();
    expect(caller.mediaInterrupted(T0 + 1000)).toEqual([{ kind: 'state', state: 'connecting' }, { kind: 'ice_restart' }]);
    const [restart] = sent(caller.restartOffer('v=0 restart', KEY, 'R'.repeat(43)));
    expect(restart).toMatchObject({ op: 'offer', call_id: CALL, party_id: 'caller-party' });
    expect(callee.receiveSignal(restart!, 'peer')).toEqual([{ kind: 'state', state: 'connecting' }, { kind: 'remote_restart', sdp: 'v=0 restart' }]);
    const [answer] = sent(callee.restartAnswer('v=0 answer 2', KEY, 'R'.repeat(43)));
    expect(caller.receiveSignal(answer!, 'peer')).toEqual([{ kind: 'remote_answer', sdp: 'v=0 answer 2', E_r: KEY }]);
    expect(caller.mediaConnected()).toEqual([{ kind: 'state', state: 'connected' }]);
    expect(callee.mediaConnected()).toEqual([{ kind: 'state', state: 'connected' }]);
    // Reconnected: the old deadline no longer applies.
    expect(caller.tick(T0 + 60_000)).toEqual([]);
  });

  it('a restart that does not connect within 10 s ends the call as connection_lost on both sides', () => {
    const { caller, callee } = connected();
    caller.mediaInterrupted(T0 + 1000);
    callee.mediaInterrupted(T0 + 1000);
    expect(caller.tick(T0 + 10_999)).toEqual([]);
    const effects = caller.tick(T0 + 11_000);
    expect(effects).toContainEqual({ kind: 'ended', reason: 'connection_lost' });
    const [hangup] = sent(effects);
    expect(hangup).toMatchObject({ op: 'hangup', reason: 'connection_lost' });
    // The callee ends on its own clock too, or on the caller's hangup, whichever comes first.
    expect(callee.receiveSignal(hangup!, 'peer')).toContainEqual({ kind: 'ended', reason: 'connection_lost' });
    const other = connected().callee;
    other.mediaInterrupted(T0);
    expect(other.tick(T0 + 10_000)).toContainEqual({ kind: 'ended', reason: 'connection_lost' });
  });

  it('renegotiation is refused from another device, from our own account, before the call connected, and with other media', () => {
    const { callee } = connected();
    const restart: CallSignal = { op: 'offer', call_id: CALL, party_id: 'caller-party', media: 'audio', sdp: 'v=0 x', E_c: KEY };
    const ignoredOnly = (effects: CallEffect[]) => effects.every((e) => e.kind === 'ignored');
    expect(ignoredOnly(callee.receiveSignal({ ...restart, party_id: 'intruder-party' }, 'peer'))).toBe(true);
    expect(ignoredOnly(callee.receiveSignal(restart, 'own'))).toBe(true);
    expect(ignoredOnly(callee.receiveSignal({ ...restart, media: 'video' }, 'peer'))).toBe(true);
    expect(ignoredOnly(callee.receiveSignal({ ...restart, call_id: '00000000000000bb' }, 'peer'))).toBe(true);
    expect(callee.state).toBe('connected');
    const { call: ringing } = CallMachine.receive(restart, { partyId: 'callee-party', offerHash: HASH, sentAt: T0, now: T0 });
    expect(ignoredOnly(ringing.receiveSignal(restart, 'peer'))).toBe(true);
    // A restart answer with the wrong offer_hash is ignored by the caller.
    const { caller } = connected();
    caller.mediaInterrupted(T0);
    caller.restartOffer('v=0 r', KEY, 'R'.repeat(43));
    expect(ignoredOnly(caller.receiveSignal({ op: 'answer', call_id: CALL, party_id: 'callee-party', sdp: 'v=0', E_r: KEY, offer_hash: HASH }, 'peer'))).toBe(true);
    // Not connected yet: a blip is not a reconnect (the initial connection fails as before).
    const fresh = CallMachine.place({ callId: CALL, partyId: 'caller-party', media: 'audio', sdp: 'v=0', E_c: KEY, offerHash: HASH, now: T0 }).call;
    expect(ignoredOnly(fresh.mediaInterrupted(T0))).toBe(true);
  });
});

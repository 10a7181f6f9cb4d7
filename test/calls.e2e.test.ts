import { MediaStreamTrack, RTCPeerConnection, RtpHeader, RtpPacket } from 'werift';
import { Calls, Messenger, UmbraClient, type CallLogEntry, type CallState, type CreatePeerConnection, type EndReason } from '@umbra/sdk';
import { DataSource } from 'typeorm';
import { Metrics } from '@umbra/server';
import { TestStack, waitFor } from './support/harness';
import { linkDevice, newAccount, type E2eeDevice } from './support/devices';

/**
 * 1:1 calls through the SDK on the real stack: signalling as E2EE messages through the gateways,
 * media between werift peers with relay-only ICE through a real coturn on loopback (Debian `coturn`;
 * this test fails without it, it never skips).
 */

interface PeerMedia {
  pc: RTCPeerConnection;
  track: MediaStreamTrack;
  received: number;
}

/** The test's shared clock skew for every device's Calls (the missed-call test moves it). */
const clock = { skew: 0 };
/** When true, every offer's a=fingerprint is rewritten before it is encrypted (the SDP-tamper test). */
const tamper = { on: false };

class Phone {
  readonly calls: Calls;
  readonly media = new Map<string, PeerMedia>();
  readonly incoming: string[] = [];
  readonly states = new Map<string, CallState[]>();
  readonly ended = new Map<string, EndReason>();
  readonly ignored: string[] = [];

  constructor(readonly dev: E2eeDevice) {
    const createPeerConnection: CreatePeerConnection = (config, ctx) => {
      const pc = new RTCPeerConnection({ iceServers: config.iceServers, iceTransportPolicy: config.iceTransportPolicy });
      const track = new MediaStreamTrack({ kind: 'audio' });
      const m: PeerMedia = { pc, track, received: 0 };
      pc.addTransceiver(track, { direction: 'sendrecv' });
      pc.onTrack.subscribe((remote) => {
        remote.onReceiveRtp.subscribe(() => {
          m.received++;
        });
      });
      this.media.set(ctx.callId, m);
      return pc;
    };
    this.calls = new Calls({
      messenger: dev.messenger,
      store: dev.store,
      createPeerConnection,
      now: () => Date.now() + clock.skew,
      tickMs: 200,
      rewriteOutgoingSdp: (sdp, op) => (tamper.on && op === 'offer' ? flipFingerprint(sdp) : sdp),
      log: (message) => this.ignored.push(message),
    });
    this.calls.on('incoming', (c) => this.incoming.push(c.callId));
    this.calls.on('state', (id, s) => this.states.set(id, [...(this.states.get(id) ?? []), s]));
    this.calls.on('ended', (id, reason) => this.ended.set(id, reason));
  }

  get account(): string {
    return this.dev.client.identity.accountIdText;
  }

  state(callId: string): CallState | undefined {
    return this.states.get(callId)?.at(-1);
  }

  async waitState(callId: string, state: CallState, timeoutMs = 20_000): Promise<void> {
    await waitFor(() => this.state(callId) === state, timeoutMs, `${state} on ${this.account.slice(0, 10)} (have ${this.states.get(callId)?.join(',') ?? 'none'})`);
  }

  async waitEnded(callId: string, timeoutMs = 20_000): Promise<EndReason> {
    await waitFor(() => this.ended.has(callId), timeoutMs, `call ${callId} to end on ${this.account.slice(0, 10)} (states ${this.states.get(callId)?.join(',') ?? 'none'})`);
    return this.ended.get(callId)!;
  }

  async waitIncoming(n = 1): Promise<string> {
    await waitFor(() => this.incoming.length >= n, 20_000, `an incoming call on ${this.account.slice(0, 10)}`);
    return this.incoming[n - 1]!;
  }

  async logEntry(callId: string): Promise<CallLogEntry | undefined> {
    return (await this.calls.log()).find((e) => e.callId === callId);
  }
}

function flipFingerprint(sdp: string): string {
  return sdp.replace(/(a=fingerprint:\S+ )([0-9A-Fa-f]{2})/g, (_m, head: string, byte: string) => `${head}${(parseInt(byte, 16) ^ 0xff).toString(16).padStart(2, '0').toUpperCase()}`);
}

/** Writes generated RTP (a 20 ms cadence of 40-byte payloads) on a call's audio track until `until()` holds. */
async function sendRtpUntil(m: PeerMedia, until: () => boolean, timeoutMs = 15_000): Promise<number> {
  let seq = 0;
  const deadline = Date.now() + timeoutMs;
  while (!until() && Date.now() < deadline) {
    m.track.writeRtp(new RtpPacket(new RtpHeader({ payloadType: 111, sequenceNumber: seq & 0xffff, timestamp: seq * 960, marker: false }), Buffer.alloc(40, seq & 0xff)));
    seq++;
    await new Promise((r) => setTimeout(r, 20));
  }
  return seq;
}

const candidateTypes = (sdp: string | undefined) => [...(sdp ?? '').matchAll(/a=candidate:\S+ \d+ \S+ \d+ \S+ \d+ typ (\w+)/g)].map((x) => x[1]);

describe('calls over the E2EE message path with media through coturn (werift, relay-only ICE)', () => {
  let stack: TestStack;
  let alice: Phone;
  let bob: Phone;
  const phones: Phone[] = [];
  const phone = (dev: E2eeDevice) => {
    const p = new Phone(dev);
    phones.push(p);
    return p;
  };

  beforeAll(async () => {
    stack = await TestStack.start({ withTurn: true });
    alice = phone(await newAccount(stack.origin));
    bob = phone(await newAccount(stack.origin));
  });
  afterAll(async () => {
    for (const p of phones) {
      await p.calls.close().catch(() => undefined);
      await p.dev.client.close();
    }
    await stack?.stop();
  });
  afterEach(() => {
    clock.skew = 0;
    tamper.on = false;
  });

  it('connects two devices, RTP flows both ways through the relay, and both logs say answered with a duration', async () => {
    const callId = await alice.calls.call(bob.account, 'audio');
    expect(await bob.waitIncoming()).toBe(callId);
    expect(bob.state(callId)).toBe('ringing');
    expect(alice.state(callId)).toBe('outgoing');
    await bob.calls.answer(callId);
    await alice.waitState(callId, 'connected');
    await bob.waitState(callId, 'connected');

    const a = alice.media.get(callId)!;
    const b = bob.media.get(callId)!;
    // Relay-only on both ends: every candidate either side offered is a TURN relay candidate.
    for (const m of [a, b]) {
      const types = candidateTypes(m.pc.localDescription?.sdp);
      expect(types.length).toBeGreaterThan(0);
      expect(new Set(types)).toEqual(new Set(['relay']));
    }
    await Promise.all([sendRtpUntil(a, () => b.received >= 5), sendRtpUntil(b, () => a.received >= 5)]);
    expect({ aliceReceived: a.received >= 5, bobReceived: b.received >= 5 }).toEqual({ aliceReceived: true, bobReceived: true });

    // §10 media keys: what one side sends with, the other receives with.
    const ka = alice.calls.mediaKeys(callId)!;
    const kb = bob.calls.mediaKeys(callId)!;
    expect(Buffer.from(ka.send)).toEqual(Buffer.from(kb.receive));
    expect(Buffer.from(kb.send)).toEqual(Buffer.from(ka.receive));
    expect(Buffer.from(ka.send)).not.toEqual(Buffer.from(ka.receive));

    await new Promise((r) => setTimeout(r, 300));
    await alice.calls.hangup(callId);
    expect(await alice.waitEnded(callId)).toBe('hangup');
    expect(await bob.waitEnded(callId)).toBe('remote_hangup');
    for (const [p, direction] of [[alice, 'outgoing'], [bob, 'incoming']] as const) {
      const entry = await p.logEntry(callId);
      expect(entry).toMatchObject({ callId, direction, media: 'audio', outcome: 'answered' });
      expect(entry!.durationMs).toBeGreaterThan(0);
    }
    expect(alice.calls.active()).toEqual([]);
  }, 90_000);

  describe('with a callee that has two devices', () => {
    let carol1: Phone;
    let carol2: Phone;

    beforeAll(async () => {
      const first = await newAccount(stack.origin);
      carol1 = phone(first);
      carol2 = phone(await linkDevice(stack.origin, first));
    });

    it('rings on both; one answers, the other stops ("answered elsewhere"), and media flows with the one that answered', async () => {
      const callId = await alice.calls.call(carol1.account, 'audio');
      await carol1.waitIncoming(1);
      await carol2.waitIncoming(1);
      await carol2.calls.answer(callId);
      expect(await carol1.waitEnded(callId)).toBe('answered_elsewhere');
      await alice.waitState(callId, 'connected');
      await carol2.waitState(callId, 'connected');
      const a = alice.media.get(callId)!;
      const c = carol2.media.get(callId)!;
      expect(carol1.media.has(callId)).toBe(false);
      await Promise.all([sendRtpUntil(a, () => c.received >= 3), sendRtpUntil(c, () => a.received >= 3)]);
      expect(Math.min(a.received, c.received)).toBeGreaterThanOrEqual(3);
      await carol2.calls.hangup(callId);
      expect(await alice.waitEnded(callId)).toBe('remote_hangup');
      expect((await carol1.logEntry(callId))?.outcome).toBe('answered_elsewhere');
    }, 90_000);

    it('decline on one device ends the call for the caller ("declined") and stops the other device', async () => {
      const callId = await alice.calls.call(carol1.account, 'video');
      await carol1.waitIncoming(2);
      await carol2.waitIncoming(2);
      await carol1.calls.decline(callId);
      expect(await alice.waitEnded(callId)).toBe('declined');
      expect(await carol2.waitEnded(callId)).toBe('declined_elsewhere');
      expect(carol1.ended.get(callId)).toBe('declined');
      expect((await alice.logEntry(callId))?.outcome).toBe('declined');
    }, 60_000);
  });

  it('a device already in a call answers another caller with busy', async () => {
    const dave = phone(await newAccount(stack.origin));
    const first = await alice.calls.call(bob.account, 'audio');
    await waitFor(() => bob.incoming.includes(first), 20_000, 'the first call to ring');
    await bob.calls.answer(first);
    await bob.waitState(first, 'connected');
    const second = await dave.calls.call(bob.account, 'audio');
    expect(await dave.waitEnded(second)).toBe('busy');
    expect(bob.incoming).not.toContain(second);
    expect(bob.state(first)).toBe('connected');
    expect((await bob.logEntry(second))?.outcome).toBe('busy');
    await bob.calls.hangup(first);
    expect(await alice.waitEnded(first)).toBe('remote_hangup');
  }, 90_000);

  it('rings for 30 s at most: then the callee has a missed call and the caller "no answer"', async () => {
    const callId = await alice.calls.call(bob.account, 'audio');
    await waitFor(() => bob.incoming.includes(callId), 20_000, 'the call to ring');
    clock.skew = 31_000;
    expect(await bob.waitEnded(callId)).toBe('missed');
    expect(await alice.waitEnded(callId)).toBe('no_answer');
    expect((await bob.logEntry(callId))?.outcome).toBe('missed');
    expect((await alice.logEntry(callId))?.outcome).toBe('no_answer');
  }, 60_000);

  it('an offer still queued for a device that comes online after the ring time is a missed call there and never rings', async () => {
    const first = await newAccount(stack.origin);
    const dana = phone(first);
    const late = await linkDevice(stack.origin, first);
    await late.client.close();
    const wakeups = async () => (await stack.of('message-relay')[0]!.svc.app.get(Metrics).wakeups.get()).values.find((v) => v.labels.reason === 'urgent')?.value ?? 0;
    const woken = await wakeups();
    const sentAt = Date.now();
    const callId = await alice.calls.call(dana.account, 'audio');
    await waitFor(() => dana.incoming.includes(callId), 20_000, 'the call to ring on the online device');
    // The offer was sent urgent: the away device (and only it) was woken.
    expect(await wakeups()).toBe(woken + 1);
    // What waits for the away device is a short-lived envelope (§10: expires_at = now + 60 s), not a vanishing message.
    const ds = stack.of('gateway')[0]!.svc.app.get(DataSource);
    const queued = (await ds.query(`SELECT expires_at::text AS e FROM envelopes WHERE recipient_account = $1 AND recipient_device = $2`, [
      Buffer.from(late.client.identity.accountId),
      late.client.identity.device.deviceId,
    ])) as { e: string | null }[];
    expect(queued.length).toBeGreaterThan(0);
    for (const { e } of queued) {
      expect(Number(e)).toBeGreaterThanOrEqual(sentAt + 60_000 - 5_000);
      expect(Number(e)).toBeLessThanOrEqual(Date.now() + 60_000 + 5_000);
    }
    clock.skew = 31_000;
    expect(await dana.waitEnded(callId)).toBe('missed');
    expect(await alice.waitEnded(callId)).toBe('no_answer');
    // ICE and the hangup are not urgent.
    expect(await wakeups()).toBe(woken + 1);

    // The same device (its store) comes back: the offer and the caller's hangup are waiting for it.
    const client = await UmbraClient.open({ serverUrl: stack.origin, store: late.store, sendTimeoutMs: 10_000 });
    const back = phone({ store: late.store, client, messenger: await Messenger.open(client, late.store), inbox: [], errors: [] });
    await client.connect();
    await waitFor(async () => (await back.logEntry(callId)) !== undefined, 20_000, 'the late device to log the call');
    expect((await back.logEntry(callId))?.outcome).toBe('missed');
    expect(back.incoming).toEqual([]);
    expect(back.states.get(callId)).not.toContain('ringing');
  }, 90_000);

  it('glare: both call each other at once; the smaller call_id connects on both sides, the other ends as glare', async () => {
    const [fromAlice, fromBob] = await Promise.all([alice.calls.call(bob.account, 'audio'), bob.calls.call(alice.account, 'audio')]);
    const [winner, loser] = fromAlice < fromBob ? [fromAlice, fromBob] : [fromBob, fromAlice];
    const loserCaller = loser === fromAlice ? alice : bob;
    expect(await loserCaller.waitEnded(loser)).toBe('glare');
    await alice.waitState(winner, 'connected');
    await bob.waitState(winner, 'connected');
    expect(alice.calls.active().map((c) => c.callId)).toEqual([winner]);
    expect(bob.calls.active().map((c) => c.callId)).toEqual([winner]);
    await alice.calls.hangup(winner);
    await bob.waitEnded(winner);
  }, 90_000);

  it('an offer whose DTLS fingerprint was rewritten on the way makes the call fail on both sides; the callee never connects', async () => {
    tamper.on = true;
    const callId = await alice.calls.call(bob.account, 'audio');
    await waitFor(() => bob.incoming.includes(callId), 20_000, 'the call to ring');
    await bob.calls.answer(callId);
    // Bob's DTLS sees a certificate that is not the one in the (rewritten) offer and refuses it.
    expect(await bob.waitEnded(callId, 60_000)).toBe('failed');
    expect(bob.states.get(callId)).not.toContain('connected');
    // Alice's own check of Bob's certificate passes, so her side may see DTLS up for a moment; Bob's
    // hangup{ice_failed} ends her call as failed, and no media of hers reached Bob.
    expect(await alice.waitEnded(callId, 20_000)).toBe('failed');
    expect(bob.media.get(callId)!.received).toBe(0);
    for (const p of [alice, bob]) expect((await p.logEntry(callId))?.outcome).toBe('failed');
  }, 90_000);
});

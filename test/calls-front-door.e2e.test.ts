import { MemoryStore, Umbra, UmbraError, type UmbraEvent, type UmbraEventOf } from '@umbra/sdk';
import { WeriftCallMedia } from '../libs/cli/src/call-media';
import { TestStack, waitFor } from './support/harness';

/**
 * Calls through the SDK's front door (issue 14): `umbra.calls` with a werift peer connection factory
 * in the options, `call` events on the one event stream, over the real stack with media relayed by a
 * real coturn on loopback (Debian `coturn`; this test fails without it, it never skips).
 */

interface Device {
  umbra: Umbra;
  store: MemoryStore;
  media: WeriftCallMedia;
  events: UmbraEventOf<'call'>[];
  keys: string[];
}

describe('calls through the front door: umbra.calls and call events (werift through coturn)', () => {
  let stack: TestStack;
  const devices: Device[] = [];
  let alice: Device;
  let bob: Device;

  async function create(withCalls = true): Promise<Device> {
    const media = new WeriftCallMedia();
    const keys: string[] = [];
    const store = new MemoryStore();
    const umbra = await Umbra.create({
      serverUrl: stack.origin,
      store,
      sendTimeoutMs: 10_000,
      ...(withCalls ? { calls: { createPeerConnection: media.createPeerConnection, tickMs: 200, onMediaKeys: (call) => void keys.push(call.callId) } } : {}),
    });
    const d: Device = { umbra: umbra as unknown as Umbra, store, media, events: [], keys };
    umbra.on('call', (e) => void d.events.push(e));
    devices.push(d);
    return d;
  }

  const account = (d: Device) => d.umbra.client.identity.accountIdText;
  const statesOf = (d: Device, callId: string) => d.events.filter((e) => e.callId === callId).map((e) => e.state);
  const waitState = (d: Device, callId: string, state: UmbraEventOf<'call'>['state']) =>
    waitFor(() => statesOf(d, callId).includes(state), 25_000, `${state} on ${account(d).slice(0, 10)} (have ${statesOf(d, callId).join(',') || 'none'})`);
  const endOf = (d: Device, callId: string) => d.events.find((e) => e.callId === callId && e.state === 'ended');

  beforeAll(async () => {
    stack = await TestStack.start({ withTurn: true, env: { RATE_LIMIT_REGISTER_PER_IP_PER_HOUR: '1000' } });
    alice = await create();
    bob = await create();
  });
  afterAll(async () => {
    for (const d of devices) {
      await d.umbra.close().catch(() => undefined);
      d.media.close();
    }
    await stack?.stop();
  });

  it('a call placed and answered through the front door connects, carries RTP both ways, ends on both sides and is in both histories', async () => {
    const callId = await alice.umbra.calls.start(account(bob), { media: 'audio' });
    await waitState(bob, callId, 'ringing');
    const ringing = bob.events.find((e) => e.callId === callId)!;
    expect(ringing).toEqual({ type: 'call', callId, peer: account(alice), state: 'ringing', media: 'audio', direction: 'incoming' });
    expect(alice.events.find((e) => e.callId === callId)).toEqual({ type: 'call', callId, peer: account(bob), state: 'outgoing', media: 'audio', direction: 'outgoing' });
    expect(bob.umbra.calls.active().map((c) => c.callId)).toEqual([callId]);

    await bob.umbra.calls.answer(callId);
    await waitState(alice, callId, 'connected');
    await waitState(bob, callId, 'connected');
    // Both devices got their SFrame keys (the web client's transform hook) before media.
    expect([alice.keys, bob.keys]).toEqual([[callId], [callId]]);
    await waitFor(() => (alice.media.statsOf(callId)?.received ?? 0) >= 5 && (bob.media.statsOf(callId)?.received ?? 0) >= 5, 15_000, 'the tone to arrive both ways through the relay');

    await alice.umbra.calls.hangup(callId);
    await waitState(bob, callId, 'ended');
    await waitState(alice, callId, 'ended');
    expect(endOf(alice, callId)?.reason).toBe('hangup');
    expect(endOf(bob, callId)?.reason).toBe('remote_hangup');
    expect(statesOf(alice, callId)).toEqual(['outgoing', 'connecting', 'connected', 'ended']);
    expect(statesOf(bob, callId)).toEqual(['ringing', 'connecting', 'connected', 'ended']);
    for (const [d, direction] of [[alice, 'outgoing'], [bob, 'incoming']] as const) {
      const [latest] = await d.umbra.calls.history();
      expect(latest).toMatchObject({ callId, direction, outcome: 'answered', media: 'audio' });
      expect(latest!.durationMs).toBeGreaterThan(0);
      // Every signal's client message id is noted, so its expiry receipt (if it ever expires unfetched) is not shown as a vanished message.
      expect((await d.store.keys('calls/signals/')).length).toBeGreaterThanOrEqual(2);
    }
  }, 90_000);

  it('a declined video call ends with declined for the caller; the event stream says so once', async () => {
    const callId = await bob.umbra.calls.start(account(alice), { media: 'video' });
    await waitState(alice, callId, 'ringing');
    await alice.umbra.calls.decline(callId);
    await waitState(bob, callId, 'ended');
    expect(endOf(bob, callId)).toMatchObject({ reason: 'declined', media: 'video', direction: 'outgoing' });
    expect(alice.events.filter((e) => e.callId === callId && e.state === 'ended')).toHaveLength(1);
    expect((await alice.umbra.calls.history())[0]).toMatchObject({ callId, outcome: 'declined', direction: 'incoming' });
  }, 60_000);

  it('without the calls option a device neither rings nor calls (NO_CALL_MEDIA), and its history is empty', async () => {
    const plain = await create(false);
    const all: UmbraEvent[] = [];
    plain.umbra.onAny((e) => void all.push(e));
    await expect(plain.umbra.calls.start(account(alice))).rejects.toMatchObject({ code: 'NO_CALL_MEDIA' });
    await expect(plain.umbra.calls.start(account(alice))).rejects.toBeInstanceOf(UmbraError);
    const callId = await alice.umbra.calls.start(account(plain), { media: 'audio' });
    await new Promise((r) => setTimeout(r, 1500));
    await plain.umbra.settle();
    expect(all.filter((e) => e.type === 'call')).toEqual([]);
    expect(await plain.umbra.calls.history()).toEqual([]);
    await alice.umbra.calls.hangup(callId);
    await waitState(alice, callId, 'ended');
  }, 60_000);
});

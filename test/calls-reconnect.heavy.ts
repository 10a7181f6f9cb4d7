import { MemoryStore, Umbra, type UmbraEventOf } from '@umbra/sdk';
import { WeriftCallMedia } from '../libs/cli/src/call-media';
import { startEmbeddedTurn } from '../scripts/lib/embedded-turn';
import { TestStack, waitFor } from './support/harness';

/**
 * Reconnect after a network blip (issue 14): a connected call loses its relay (the embedded coturn
 * stops, so every TURN allocation is gone); werift's consent checks fail (30 s) and the calls
 * module restarts ICE over E2EE signalling. With the relay back the call returns to `connected`;
 * with it still gone the call ends as `connection_lost` on both sides.
 */
describe('calls reconnect after a network blip (werift, relay-only through coturn)', () => {
  let stack: TestStack;
  const devices: { umbra: Umbra; media: WeriftCallMedia; events: UmbraEventOf<'call'>[] }[] = [];

  async function device() {
    const media = new WeriftCallMedia();
    const umbra = (await Umbra.create({ serverUrl: stack.origin, store: new MemoryStore(), sendTimeoutMs: 10_000, calls: { createPeerConnection: media.createPeerConnection, tickMs: 200 } })) as unknown as Umbra;
    const d = { umbra, media, events: [] as UmbraEventOf<'call'>[] };
    umbra.on('call', (e) => {
      d.events.push(e);
      if (e.state === 'ringing') void umbra.calls.answer(e.callId);
    });
    devices.push(d);
    return d;
  }
  const states = (d: (typeof devices)[number], callId: string) => d.events.filter((e) => e.callId === callId).map((e) => e.state);
  const count = (d: (typeof devices)[number], callId: string, state: string) => states(d, callId).filter((s) => s === state).length;

  beforeAll(async () => {
    stack = await TestStack.start({ withTurn: true, env: { RATE_LIMIT_REGISTER_PER_IP_PER_HOUR: '1000' } });
  });
  afterAll(async () => {
    for (const d of devices) {
      await d.umbra.close().catch(() => undefined);
      d.media.close();
    }
    await stack?.stop();
  });

  async function connectedCall() {
    const alice = await device();
    const bob = await device();
    const callId = await alice.umbra.calls.start(bob.umbra.client.identity.accountIdText, { media: 'audio' });
    await waitFor(() => count(alice, callId, 'connected') === 1 && count(bob, callId, 'connected') === 1, 25_000, 'the call to connect');
    await waitFor(() => (alice.media.statsOf(callId)?.received ?? 0) > 5 && (bob.media.statsOf(callId)?.received ?? 0) > 5, 15_000, 'media both ways');
    return { alice, bob, callId };
  }

  async function stopRelay(): Promise<{ port: number; secret: string }> {
    const turn = stack.turn!;
    await turn.close();
    return { port: turn.port, secret: turn.secret };
  }

  it('the relay comes back: the caller restarts ICE over E2EE signalling and both sides return to connected in the same call', async () => {
    const { alice, bob, callId } = await connectedCall();
    const old = await stopRelay();
    await waitFor(() => count(alice, callId, 'connecting') === 2, 60_000, `the caller to notice the blip (states ${states(alice, callId).join(',')})`);
    stack.turn = await startEmbeddedTurn({ host: '127.0.0.1', port: old.port, relayPorts: [52_100, 52_139], dir: `/tmp/umbra-test-turn-${stack.env.REDIS_PREFIX}-again`, secret: old.secret });
    await waitFor(() => count(alice, callId, 'connected') === 2 && count(bob, callId, 'connected') === 2, 20_000, `both to reconnect (caller ${states(alice, callId).join(',')}; callee ${states(bob, callId).join(',')})`);
    // Same call, same media keys; no new call was rung. RTP after the restart is not asserted: between
    // two werift peers ICE reconnects through the new relay but no RTP arrives afterwards (docs/calls.md).
    expect(states(bob, callId)).toEqual(['ringing', 'connecting', 'connected', 'connecting', 'connected']);
    expect(states(alice, callId)).toEqual(['outgoing', 'connecting', 'connected', 'connecting', 'connected']);
    expect(bob.events.filter((e) => e.state === 'ringing')).toHaveLength(1);
    await alice.umbra.calls.hangup(callId);
    await waitFor(() => states(bob, callId).includes('ended'), 20_000, 'the callee to end');
    expect(bob.events.find((e) => e.callId === callId && e.state === 'ended')?.reason).toBe('remote_hangup');
  }, 150_000);

  it('the relay stays away: after 10 s of trying the call ends as connection_lost on both sides', async () => {
    const { alice, bob, callId } = await connectedCall();
    await stopRelay();
    await waitFor(() => states(alice, callId).includes('ended') && states(bob, callId).includes('ended'), 75_000, `both to end (caller ${states(alice, callId).join(',')}; callee ${states(bob, callId).join(',')})`);
    for (const d of [alice, bob]) expect(d.events.find((e) => e.callId === callId && e.state === 'ended')?.reason).toBe('connection_lost');
    expect((await alice.umbra.calls.history())[0]).toMatchObject({ callId, outcome: 'answered' });
  }, 150_000);
});

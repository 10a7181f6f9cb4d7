import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MemoryStore, Umbra, type UmbraEventOf } from '@umbra/sdk';
import { WeriftCallMedia } from '../libs/cli/src/call-media';
import { TestStack, waitFor } from './support/harness';
import { runUmbra } from './support/umbra-cli';

/**
 * `umbra call` and `umbra calls` (the built CLI) against an SDK device on the real stack, media
 * through the embedded coturn (Debian `coturn`; the test fails without it, it never skips).
 */
describe('umbra call / umbra calls (built CLI) with an SDK device on the other end', () => {
  let stack: TestStack;
  let bob: Umbra;
  const media = new WeriftCallMedia();
  const bobEvents: UmbraEventOf<'call'>[] = [];
  /** What Bob's device does when a call rings. */
  let onRing: 'answer' | 'decline' = 'answer';
  const home = mkdtempSync(path.join(tmpdir(), 'umbra-cli-calls-'));
  const handle = `bob_calls_${Date.now().toString(36)}`;
  let cliAccount: string;

  const umbra = (...args: string[]) => runUmbra(['--home', home, '--server', stack.origin, ...args], { killAfterMs: 60_000 });

  beforeAll(async () => {
    stack = await TestStack.start({ withTurn: true, env: { RATE_LIMIT_REGISTER_PER_IP_PER_HOUR: '1000' } });
    cliAccount = (await umbra('init')).stdout.trim().split(/\s+/).find((w) => w.startsWith('um1'))!;
    expect((await umbra('register')).code).toBe(0);
    bob = await Umbra.create({ serverUrl: stack.origin, store: new MemoryStore(), handle, calls: { createPeerConnection: media.createPeerConnection, tickMs: 200 } });
    bob.on('call', (e) => {
      bobEvents.push(e);
      if (e.state === 'ringing' && e.direction === 'incoming') void (onRing === 'answer' ? bob.calls.answer(e.callId) : bob.calls.decline(e.callId));
    });
  });
  afterAll(async () => {
    await bob?.close();
    media.close();
    await stack?.stop();
  });

  it('calls @handle: prints each state, the tone reaches the SDK device, hangs up after --seconds; `umbra calls` shows it answered with a duration', async () => {
    const res = await umbra('call', `@${handle}`, '--seconds', '2');
    expect(`${res.code} ${res.stderr}`).toBe('0 umbra: calling @' + handle + ' (audio); Ctrl-C hangs up\n');
    expect(res.stdout.trim().split('\n')).toEqual(['outgoing', 'connecting', 'connected', 'ended: hangup']);
    const callId = bobEvents.find((e) => e.state === 'ringing')!.callId;
    await waitFor(() => bobEvents.some((e) => e.callId === callId && e.state === 'ended'), 20_000, 'the call to end on the SDK device');
    expect(bobEvents.find((e) => e.callId === callId && e.state === 'ended')?.reason).toBe('remote_hangup');
    expect(media.statsOf(callId)!.received).toBeGreaterThan(10);

    const calls = await umbra('calls');
    expect(calls.code).toBe(0);
    expect(calls.stdout).toMatch(new RegExp(`audio  to @${handle}  answered, 0:0[2-4]\\n`));
    const json = JSON.parse((await umbra('--json', 'calls')).stdout.trim().split('\n')[0]!) as Record<string, unknown>;
    expect(json).toMatchObject({ callId, direction: 'outgoing', outcome: 'answered', peer: bob.client.identity.accountIdText });
    expect(json.durationMs).toBeGreaterThanOrEqual(1900);
  }, 120_000);

  it('a declined call exits 1 with the reason; --json prints one object per state', async () => {
    onRing = 'decline';
    const res = await umbra('--json', 'call', bob.client.identity.accountIdText, '--video');
    onRing = 'answer';
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/the call did not connect: declined/);
    const states = res.stdout.trim().split('\n').map((l) => JSON.parse(l) as { state: string; reason?: string });
    expect(states.map((s) => s.state)).toEqual(['outgoing', 'ended']);
    expect(states[1]!.reason).toBe('declined');
    expect((await umbra('calls')).stdout.split('\n')[0]).toMatch(new RegExp(`video  to @${handle}  declined$`));
  }, 60_000);

  it('a call that rang while the CLI was away shows as missed in `umbra calls`', async () => {
    const callId = await bob.calls.start(cliAccount, { media: 'audio' });
    await new Promise((r) => setTimeout(r, 500));
    await bob.calls.hangup(callId);
    const calls = await umbra('calls');
    expect(calls.code).toBe(0);
    expect(calls.stdout.split('\n')[0]).toMatch(new RegExp(`audio  from @${handle}  missed$`));
    expect((await bob.calls.history())[0]).toMatchObject({ callId, outcome: 'hangup', direction: 'outgoing' });
  }, 60_000);
});

import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { startEmbeddedTurn } from '../../scripts/lib/embedded-turn';
import { waitFor } from '../support/harness';
import { WebStack } from '../support/web';
import { callShown, framesDecodedOnAll, twoInAChat } from '../support/web-calls';

/**
 * Reconnect after a network blip (issue 14) in the browser: two Chromium pages in a video call through
 * the stack's coturn lose the relay (coturn stops, every allocation is gone). Chromium reports the ICE
 * connection `disconnected` within seconds; the caller's SDK restarts ICE over E2EE signalling. With
 * coturn back on the same port, secret and relay range the call returns to `connected` and media flows
 * again through the same SFrame transforms; with it gone both pages end the call as `connection_lost`.
 */

const stateOf = async (page: Page) => (await page.getByTestId('call-state').textContent())?.trim() ?? '';

/** Records every state the page's `call-state` shows, in order, from now on (window.__callStates). */
async function recordStates(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as { __callStates: string[] };
    w.__callStates = [];
    const note = () => {
      const s = document.querySelector('[data-testid="call-state"]')?.textContent?.trim() ?? '';
      if (s && w.__callStates[w.__callStates.length - 1] !== s) w.__callStates.push(s);
    };
    new MutationObserver(note).observe(document.body, { subtree: true, childList: true, characterData: true });
    note();
  });
}
const statesOf = (page: Page) => page.evaluate(() => (window as unknown as { __callStates: string[] }).__callStates);

describe('calls reconnect after a network blip (Chromium, coturn, SFrame)', () => {
  let web: WebStack;
  let alice: Page;
  let bob: Page;

  beforeAll(async () => {
    web = await WebStack.start({ withTurn: true });
    ({ alice, bob } = await twoInAChat(web, 'r'));
  }, 120_000);

  afterAll(async () => {
    await web?.stop();
  });

  /** Alice video-calls Bob; resolves once both pages decode > 30 frames through SFrame. */
  async function connectedVideoCall(): Promise<void> {
    for (const p of [alice, bob]) await recordStates(p);
    await alice.getByTestId('call-video').click();
    await bob.getByTestId('incoming-call').waitFor({ timeout: 20_000 });
    await bob.getByTestId('answer').click();
    await framesDecodedOnAll([alice, bob], 60_000);
    for (const p of [alice, bob]) expect(await stateOf(p)).toBe('connected');
  }

  /** Stops the stack's coturn; returns what starting it again on the same port needs. */
  async function stopRelay(): Promise<{ port: number; secret: string; relayPorts: [number, number]; dir: string }> {
    const turn = web.stack.turn!;
    const dir = `/tmp/umbra-test-turn-${web.stack.env.REDIS_PREFIX}`;
    const conf = readFileSync(path.join(dir, `turnserver-${turn.port}.conf`), 'utf8');
    const setting = (name: string) => Number(new RegExp(`^${name}=(\\d+)$`, 'm').exec(conf)?.[1]);
    await turn.close();
    return { port: turn.port, secret: turn.secret, relayPorts: [setting('min-port'), setting('max-port')], dir };
  }

  it('coturn comes back: both pages return to connected in the same call and decode new frames through the same SFrame transforms', async () => {
    await connectedVideoCall();
    const relay = await stopRelay();
    const stoppedAt = Date.now();
    await waitFor(async () => (await stateOf(alice)) === 'connecting' && (await stateOf(bob)) === 'connecting', 30_000, 'both pages to leave connected');
    const noticedMs = Date.now() - stoppedAt;
    const before = [await callShown(alice), await callShown(bob)];
    web.stack.turn = await startEmbeddedTurn({ host: '127.0.0.1', port: relay.port, relayPorts: relay.relayPorts, dir: relay.dir, secret: relay.secret });
    const restartedAt = Date.now();
    await waitFor(async () => (await stateOf(alice)) === 'connected' && (await stateOf(bob)) === 'connected', 30_000, 'both pages to reconnect').catch(async (err: unknown) => {
      throw new Error(`${String(err)}: caller ${(await statesOf(alice)).join(',')}; callee ${(await statesOf(bob)).join(',')}`);
    });
    const reconnectedMs = Date.now() - restartedAt;
    const last = await framesDecodedOnAll([alice, bob], 30_000, before);
    for (const s of last) expect(s).toMatchObject({ localCandidate: 'relay', sframeRejected: 0 });
    // One call all along: no second ring, no end in between; the counters kept growing on the same connection.
    expect(await statesOf(alice)).toEqual(['idle', 'outgoing', 'connecting', 'connected', 'connecting', 'connected']);
    expect(await statesOf(bob)).toEqual(['idle', 'ringing', 'connecting', 'connected', 'connecting', 'connected']);
    console.log(`reconnect in Chromium: blip noticed by both pages after ${noticedMs} ms, connected again ${reconnectedMs} ms after coturn was back; frames ${JSON.stringify(before.map((s) => s.framesDecoded))} -> ${JSON.stringify(last.map((s) => s.framesDecoded))}`);

    await alice.getByTestId('hangup').click();
    for (const p of [alice, bob]) {
      await p.getByTestId('call-state').filter({ hasText: /^ended$/ }).waitFor({ timeout: 20_000 });
      await p.getByTestId('call-close').click();
    }
    expect(web.pageErrors).toEqual([]);
  }, 180_000);

  it('coturn stays away: after 10 s of trying both pages end the call as "Connection lost", logged as answered', async () => {
    await connectedVideoCall();
    await stopRelay();
    for (const p of [alice, bob]) await p.getByTestId('call-state').filter({ hasText: /^ended$/ }).waitFor({ timeout: 45_000 });
    for (const p of [alice, bob]) {
      expect(await p.getByTestId('call-end-reason').textContent()).toBe(' · Connection lost');
      expect(await statesOf(p)).toEqual(['idle', p === alice ? 'outgoing' : 'ringing', 'connecting', 'connected', 'connecting', 'ended']);
      await p.getByTestId('call-close').click();
    }
    await alice.getByTestId('call-entry').last().filter({ hasText: /Outgoing video call · \d+:\d\d/ }).waitFor();
    expect(await alice.getByTestId('call-entry').last().getAttribute('data-outcome')).toBe('answered');
    expect(web.pageErrors).toEqual([]);
  }, 120_000);
});

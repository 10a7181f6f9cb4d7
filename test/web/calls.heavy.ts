import path from 'node:path';
import type { Page } from 'playwright-core';
import { SCREENSHOTS, WebStack } from '../support/web';
import { framesDecodedOnAll, shownUntil, twoInAChat, type CallShown } from '../support/web-calls';

/**
 * Calls in the web client: two Chromium pages (fake camera and microphone) over the real stack and its
 * coturn on loopback. The browsers' own RTCPeerConnection, relay-only ICE, SFrame over
 * RTCRtpScriptTransform; everything checked from what the call screen shows (getStats() and the SFrame
 * worker's frame counters in `call-stats`).
 */

const state = (page: Page) => page.getByTestId('call-state');

async function expectState(page: Page, name: string, timeout = 20_000): Promise<void> {
  await state(page).filter({ hasText: new RegExp(`^${name}$`) }).waitFor({ state: 'attached', timeout });
}

describe('calls in the web client (Chromium, coturn, SFrame)', () => {
  let web: WebStack;
  let alice: Page;
  let bob: Page;

  beforeAll(async () => {
    web = await WebStack.start({ withTurn: true }, { testHooks: true });
    ({ alice, bob } = await twoInAChat(web, 'c', [360, 740]));
  }, 120_000);

  afterAll(async () => {
    await web?.stop();
  });

  it('places a video call through the relay: relay candidate pair and > 30 decoded frames on both sides, SFrame on every frame, hang-up ends both', async () => {
    await expectState(alice, 'idle');
    await alice.getByTestId('call-video').click();
    await expectState(alice, 'outgoing');
    await bob.getByTestId('incoming-call').waitFor({ timeout: 20_000 });
    await expectState(bob, 'ringing');
    await bob.getByTestId('answer').click();
    await expectState(alice, 'connected', 30_000);
    await expectState(bob, 'connected', 30_000);

    const last = await framesDecodedOnAll([alice, bob], 45_000);
    for (const s of last) {
      expect(s).toMatchObject({ localCandidate: 'relay', remoteCandidate: 'relay', sframeRejected: 0 });
      expect(s.sframeEncrypted).toBeGreaterThan(30);
    }
    await bob.getByTestId('remote-video').waitFor();
    expect(await bob.getByTestId('remote-video').evaluate((v) => (v as HTMLVideoElement).videoWidth)).toBeGreaterThan(0);
    await bob.getByTestId('call-duration').waitFor();
    expect(await bob.getByTestId('call-stats').textContent()).toBe('Relayed · End-to-end encrypted');
    expect(await bob.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(360);
    await bob.screenshot({ path: path.join(SCREENSHOTS, 'web-call-360.png') });
    await alice.screenshot({ path: path.join(SCREENSHOTS, 'web-call.png') });

    // Keyboard: the in-call screen focuses "Hang up".
    await bob.getByTestId('mute').focus();
    await bob.keyboard.press('Enter');
    expect(await bob.getByTestId('mute').getAttribute('aria-pressed')).toBe('true');
    await alice.getByTestId('hangup').click();
    await expectState(alice, 'ended');
    await expectState(bob, 'ended');
    for (const p of [alice, bob]) {
      await p.getByTestId('call-close').click();
      await expectState(p, 'idle');
    }
    await bob.getByTestId('call-entry').filter({ hasText: /Incoming video call · \d+:\d\d/ }).waitFor();
    expect(web.pageErrors).toEqual([]);
  }, 150_000);

  it('the callee declines: both pages show ended, the caller "Declined"', async () => {
    await alice.getByTestId('call-audio').click();
    await bob.getByTestId('incoming-call').waitFor({ timeout: 20_000 });
    await bob.getByTestId('decline').click();
    await expectState(alice, 'ended');
    await expectState(bob, 'ended');
    expect(await alice.getByTestId('call-end-reason').textContent()).toContain('Declined');
    for (const p of [alice, bob]) await p.getByTestId('call-close').click();
    await alice.getByTestId('call-entry').filter({ hasText: 'Outgoing audio call · Declined' }).waitFor();
  }, 60_000);

  it('an audio call: Opus frames through SFrame both ways, no video decoded, hang-up from the callee', async () => {
    await alice.getByTestId('call-audio').click();
    await bob.getByTestId('incoming-call').waitFor({ timeout: 20_000 });
    await bob.getByTestId('answer').click();
    await expectState(alice, 'connected', 30_000);
    const last = await shownUntil([alice, bob], (shown) => shown.every((s) => s.sframeDecrypted > 50), 30_000, 'decrypted audio frames on both pages');
    for (const s of last) expect(s).toMatchObject({ localCandidate: 'relay', framesDecoded: 0, sframeRejected: 0 });
    await bob.getByTestId('hangup').click();
    for (const p of [alice, bob]) {
      await expectState(p, 'ended');
      await p.getByTestId('call-close').click();
    }
  }, 60_000);

  it('with a wrong SFrame key on the callee (test hook) its page decodes no frame while packets arrive', async () => {
    await bob.evaluate(() => {
      (globalThis as { __umbraCallTest?: { corruptReceiveKey: boolean } }).__umbraCallTest = { corruptReceiveKey: true };
    });
    await alice.getByTestId('call-video').click();
    await bob.getByTestId('incoming-call').waitFor({ timeout: 20_000 });
    await bob.getByTestId('answer').click();
    await expectState(bob, 'connected', 30_000);
    const last = await shownUntil([alice, bob], ([a, b]) => a!.framesDecoded > 30 && b!.packetsReceived > 100 && b!.sframeRejected > 30, 45_000, 'packets on the callee');
    const [a, b] = last as [CallShown, CallShown];
    expect(b).toMatchObject({ framesDecoded: 0, sframeDecrypted: 0 });
    expect(a).toMatchObject({ sframeRejected: 0 });
    await bob.getByTestId('hangup').click();
    await expectState(alice, 'ended');
    await expectState(bob, 'ended');
  }, 90_000);

  it('refuses to place a call where WebRTC Encoded Transform is missing, with a clear message', async () => {
    await alice.evaluate(() => {
      (globalThis as { RTCRtpScriptTransform?: unknown }).RTCRtpScriptTransform = undefined;
    });
    await alice.getByTestId('call-close').click();
    await alice.getByTestId('call-video').click();
    await expectState(alice, 'ended');
    expect(await alice.getByTestId('call-error').textContent()).toContain('cannot encrypt call media end to end');
    await alice.getByTestId('call-close').click();
    await bob.getByTestId('call-close').click();
    await expectState(bob, 'idle');
  }, 30_000);

  it('keeps the call history in the device store: the entries are back after a reload', async () => {
    await bob.reload();
    await bob.getByTestId('connection').filter({ hasText: 'online' }).waitFor({ timeout: 30_000 });
    await bob.getByTestId('conversation').first().click();
    await bob.getByTestId('call-entry').first().waitFor();
    expect(await bob.getByTestId('call-entry').evaluateAll((els) => els.map((e) => e.getAttribute('data-outcome')))).toEqual(['answered', 'declined', 'answered', 'answered']);
    await expectState(bob, 'idle');
  }, 60_000);
});

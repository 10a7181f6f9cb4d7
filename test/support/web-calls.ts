import { randomBytes } from 'node:crypto';
import type { Page } from 'playwright-core';
import { waitFor } from './harness';
import { createAccount, openChat, type WebStack } from './web';

/** What the call screen shows in `call-stats`: getStats() and the SFrame worker's frame counters. */
export interface CallShown {
  localCandidate: string;
  remoteCandidate: string;
  framesDecoded: number;
  packetsReceived: number;
  sframeEncrypted: number;
  sframeDecrypted: number;
  sframeRejected: number;
  sframeReplayed: number;
}

export async function callShown(page: Page): Promise<CallShown> {
  const d = await page.getByTestId('call-stats').evaluate((el) => ({ ...(el as HTMLElement).dataset }));
  return {
    localCandidate: d.localCandidate ?? '',
    remoteCandidate: d.remoteCandidate ?? '',
    framesDecoded: Number(d.framesDecoded),
    packetsReceived: Number(d.packetsReceived),
    sframeEncrypted: Number(d.sframeEncrypted),
    sframeDecrypted: Number(d.sframeDecrypted),
    sframeRejected: Number(d.sframeRejected),
    sframeReplayed: Number(d.sframeReplayed),
  };
}

/** Polls what the pages show until `ready` says so; returns it. A timeout names `what` and the last counters. */
export async function shownUntil(pages: Page[], ready: (shown: CallShown[]) => boolean, timeoutMs: number, what: string, context = ''): Promise<CallShown[]> {
  let last: CallShown[] = [];
  await waitFor(
    async () => {
      last = await Promise.all(pages.map((p) => callShown(p)));
      return ready(last);
    },
    timeoutMs,
    what,
  ).catch((err: unknown) => {
    throw new Error(`${String(err)}: ${context}${JSON.stringify(last)}`);
  });
  return last;
}

/**
 * Waits until every page has decoded more than 30 video frames through SFrame (more than 30 beyond
 * `since`, the counters read earlier, when given); what the pages show then. A timeout names the counters.
 */
export function framesDecodedOnAll(pages: Page[], timeoutMs: number, since?: CallShown[]): Promise<CallShown[]> {
  const base = (i: number) => since?.[i] ?? { framesDecoded: 0, sframeDecrypted: 0 };
  return shownUntil(
    pages,
    (shown) => shown.every((s, i) => s.framesDecoded > base(i).framesDecoded + 30 && s.sframeDecrypted > base(i).sframeDecrypted + 30),
    timeoutMs,
    since ? 'new decoded frames on both pages' : 'decoded frames on both pages',
    since ? `before ${JSON.stringify(since)}, now ` : '',
  );
}

/** Two new accounts in two pages with a 1:1 chat open on both (Alice wrote first, so Bob has it). */
export async function twoInAChat(web: WebStack, prefix: string, bobSize?: [number, number]): Promise<{ alice: Page; bob: Page }> {
  const aliceHandle = `${prefix}a${randomBytes(4).toString('hex')}`;
  const bobHandle = `${prefix}b${randomBytes(4).toString('hex')}`;
  const alice = await web.newPage();
  const bob = bobSize ? await web.newPage(...bobSize) : await web.newPage();
  await createAccount(alice, aliceHandle);
  await createAccount(bob, bobHandle);
  await openChat(alice, `@${bobHandle}`);
  await alice.getByTestId('composer').fill('call me');
  await alice.getByTestId('send').click();
  await bob.getByTestId('conversation').first().waitFor({ timeout: 15_000 });
  await bob.getByTestId('conversation').first().click();
  await bob.getByTestId('message').filter({ hasText: 'call me' }).waitFor();
  return { alice, bob };
}

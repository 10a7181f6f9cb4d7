import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Locator, Page } from 'playwright-core';
import { encode } from 'uqr';
import { verifySafetyQr } from '@umbra/crypto';
import { Background, runUmbra } from '../support/umbra-cli';
import { SCREENSHOTS, WebStack, createAccount, openChat } from '../support/web';

/**
 * Device linking and safety numbers in the web client (issue 16), in a real Chromium against the
 * real stack, with the umbra CLI as the other side: a browser joins a CLI identity, a browser adds
 * a CLI device, safety numbers agree across pages and the CLI, and a handle that moves to another
 * account blocks the page with a warning.
 */
const tmp = (name: string) => mkdtempSync(path.join(os.tmpdir(), `umbra-${name}-`));
const uniq = (prefix: string) => `${prefix}${randomBytes(5).toString('hex')}`;

/** The dark modules of a QR path the page drew ("M{x} {y}h1v1h-1z" per module). */
function drawnModules(d: string): string[] {
  return [...d.matchAll(/M(\d+) (\d+)h1v1h-1z/g)].map((m) => `${m[1]},${m[2]}`).sort();
}

/** The dark modules of an independent encoding of `text` (same version, level and quiet zone). */
function expectedModules(text: string): string[] {
  const out: string[] = [];
  encode(text, { ecc: 'M', border: 4 }).data.forEach((row, y) => row.forEach((dark, x) => dark && out.push(`${x},${y}`)));
  return out.sort();
}

/** Checks that a QR code on the page encodes exactly `text`, and returns it. */
async function expectQr(qr: Locator, text?: string): Promise<string> {
  const payload = (await qr.getAttribute('data-payload')) ?? '';
  if (text !== undefined) expect(payload).toBe(text);
  const d = (await qr.locator('path').getAttribute('d')) ?? '';
  expect(drawnModules(d)).toEqual(expectedModules(payload));
  expect(drawnModules(d).length).toBeGreaterThan(100);
  return payload;
}

describe('web client: device linking and safety numbers (issue 16)', () => {
  let web: WebStack;

  beforeAll(async () => {
    web = await WebStack.start();
  }, 180_000);

  afterAll(async () => {
    await web?.stop();
  });

  const umbra = async (home: string, ...args: string[]) => {
    const res = await runUmbra(['--home', home, '--server', web.origin, ...args]);
    if (res.code !== 0) throw new Error(`umbra ${args.join(' ')} exited ${res.code}: ${res.stderr}`);
    return res.stdout.trim();
  };
  const json = async (home: string, ...args: string[]) => JSON.parse(await umbra(home, '--json', ...args)) as Record<string, unknown>;

  const openDevicePage = async (page: Page) => {
    await page.getByTestId('this-device').click();
    await page.getByTestId('device-list').waitFor();
  };
  const safetyDigits = async (page: Page): Promise<string> => {
    await page.getByTestId('safety-button').click();
    const sn = page.getByTestId('safety-number');
    await sn.waitFor();
    return (await sn.getAttribute('data-digits')) ?? '';
  };

  it('links a new browser to a CLI identity: the CLI approves its code, the page confirms the account, then receives its messages', async () => {
    const a = tmp('alice');
    const b = tmp('bob');
    const handle = uniq('la');
    const alice = await umbra(a, 'init');
    await umbra(a, 'register', '--handle', handle);
    const bob = await umbra(b, 'init');
    await umbra(b, 'register');

    const page = await web.newPage();
    await page.getByTestId('link-existing').click();
    const codeEl = page.getByTestId('link-code');
    await codeEl.waitFor();

    // First the user says "no" to the account offered: nothing is answered, nothing is kept.
    const declined = (await codeEl.textContent())?.trim() ?? '';
    const refused = Background.umbra(['--home', a, '--server', web.origin, 'link', declined]);
    try {
      await page.getByTestId('link-confirm').waitFor({ timeout: 20_000 });
      await page.getByTestId('link-reject').click();
      await page.getByTestId('error').filter({ hasText: 'Nothing was sent or kept' }).waitFor();
      expect(await page.evaluate(async () => (await indexedDB.databases()).map((d) => d.name))).not.toContain('umbra-device');
      await new Promise((r) => setTimeout(r, 1500));
      expect(refused.exitCode).toBeUndefined();
      expect(refused.stdout).toBe('');
    } finally {
      await refused.stop();
    }
    await page.getByTestId('link-restart').click();
    await codeEl.filter({ hasNotText: declined }).waitFor();
    const code = (await codeEl.textContent())?.trim() ?? '';
    expect(code).toMatch(/^umbra-link:1:[A-Za-z0-9_-]+$/);
    await expectQr(page.getByTestId('link-qr'), code);
    const key = (await page.getByTestId('link-key').textContent()) ?? '';
    expect(key).toMatch(/^[0-9a-f]{4} [0-9a-f]{4} [0-9a-f]{4} [0-9a-f]{4}$/);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'web-link.png') });

    // The CLI answers the code; the page shows the account before it answers (§1).
    const approving = runUmbra(['--home', a, '--server', web.origin, 'link', code]);
    await page.getByTestId('link-confirm').waitFor({ timeout: 20_000 });
    expect(await page.getByTestId('link-account').textContent()).toBe(alice);
    await page.getByTestId('link-accept').click();
    const approved = await approving;
    expect(approved.code).toBe(0);
    // Both screens showed the same key for the new device.
    expect(approved.stderr).toContain(`(key ${key}) to ${alice}`);
    const deviceId = Number(/^added device (\d+)/.exec(approved.stdout)?.[1]);
    await page.getByTestId('connection').filter({ hasText: 'online' }).waitFor({ timeout: 30_000 });

    await openDevicePage(page);
    expect(await page.getByTestId('account-id').textContent()).toBe(alice);
    expect(Number(await page.getByTestId('device-id').textContent())).toBe(deviceId);
    expect(await page.getByTestId('handle').textContent()).toBe(`@${handle}`);
    await page.getByTestId('device').nth(1).waitFor();
    expect(await page.getByTestId('device').count()).toBe(2);
    // A linked device does not hold the account key: it can neither link nor remove devices.
    await page.getByTestId('link-unavailable').waitFor();
    expect(await page.getByTestId('device-remove').count()).toBe(0);
    expect(await json(a, 'devices')).toMatchObject({ listVersion: 2, devices: [expect.anything(), expect.anything()] });
    await page.getByTestId('this-device').click();

    // A full device of Alice's account: Bob's message to @handle arrives live, and so does what Alice sends from the CLI.
    await umbra(b, 'send', `@${handle}`, 'hello linked browser');
    const conv = page.getByTestId('conversation');
    await conv.first().waitFor({ timeout: 20_000 });
    await conv.first().click();
    await page.getByTestId('message').filter({ hasText: 'hello linked browser' }).waitFor({ timeout: 20_000 });
    await umbra(a, 'send', bob, 'sent from the CLI device');
    const own = page.getByTestId('message').filter({ hasText: 'sent from the CLI device' });
    await own.waitFor({ timeout: 20_000 });
    expect(await own.getAttribute('data-direction')).toBe('out');
    expect(web.pageErrors).toEqual([]);
  }, 120_000);

  it('on the device holding the account key: refuses a bad code, declines and then approves a CLI device after comparing its key, removes it; links and removes a second browser', async () => {
    const page = await web.newPage(360, 740);
    await createAccount(page, uniq('lw'));
    await openDevicePage(page);
    const accountId = (await page.getByTestId('account-id').textContent()) ?? '';
    expect(await page.getByTestId('device').count()).toBe(1);
    expect(await page.getByTestId('device-remove').count()).toBe(0);

    await page.getByTestId('link-code-input').fill('hello');
    await page.getByTestId('link-check').click();
    await page.getByTestId('error').filter({ hasText: 'That is not a link code' }).waitFor();
    await page.getByTestId('link-code-input').fill('umbra-link:1:AAAA');
    await page.getByTestId('link-check').click();
    await page.getByTestId('error').filter({ hasText: 'damaged' }).waitFor();

    const n = tmp('new');
    const linking = Background.umbra(['--home', n, '--server', web.origin, 'link']);
    let newId = 0;
    try {
      await linking.until((l) => l.stdout.includes('\n') && l.stderr.includes('waiting'), 'a link code');
      const code = linking.stdout.split('\n')[0]!;
      const key = /key ([0-9a-f]{4} [0-9a-f]{4} [0-9a-f]{4} [0-9a-f]{4})/.exec(linking.stderr)?.[1];
      newId = Number(/device (\d+), key/.exec(linking.stderr)?.[1]);

      await page.getByTestId('link-code-input').fill(`  ${code}\n`);
      await page.getByTestId('link-check').click();
      expect(await page.getByTestId('link-new-key').textContent()).toBe(key);
      expect(await page.getByTestId('link-new-device').textContent()).toBe(`device ${newId}`);
      await page.getByTestId('link-decline').click();
      // Declined: nothing was sent, so the new device is still waiting and has seen no account.
      await new Promise((r) => setTimeout(r, 2000));
      expect(linking.stdout.trim().split('\n')).toEqual([code]);
      expect(linking.exitCode).toBeUndefined();

      await page.getByTestId('link-code-input').fill(code);
      await page.getByTestId('link-check').click();
      await page.getByTestId('link-approve').click();
      await page.getByTestId('link-done').waitFor({ timeout: 30_000 });
      await linking.wait();
      expect(linking.exitCode).toBe(0);
      expect(linking.stdout.trim().split('\n')).toEqual([code, `joining ${accountId}`, `linked to ${accountId} as device ${newId}`]);
    } finally {
      await linking.stop();
    }
    await page.locator(`[data-testid="device"][data-device-id="${newId}"]`).waitFor();
    expect(await page.getByTestId('device').count()).toBe(2);
    expect((await json(n, 'devices')).devices).toHaveLength(2);
    // Usable on a phone: nothing wider than the 360 px screen.
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(360);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'web-devices-360.png') });

    await page.getByTestId('device-remove').click();
    await page.getByTestId('device-remove-confirm').click();
    await page.locator('[data-testid="device"]').nth(1).waitFor({ state: 'detached', timeout: 30_000 });
    expect(await page.getByTestId('device').count()).toBe(1);
    expect(await page.getByTestId('device').getAttribute('data-device-id')).toBe(await page.getByTestId('device-id').textContent());

    // Browser to browser: a second page links to this account, then is removed and says so.
    const second = await web.newPage();
    await second.getByTestId('link-existing').click();
    await second.getByTestId('link-code').waitFor();
    const code2 = (await second.getByTestId('link-code').textContent())?.trim() ?? '';
    await page.getByTestId('link-code-input').fill(code2);
    await page.getByTestId('link-check').click();
    expect(await page.getByTestId('link-new-key').textContent()).toBe(await second.getByTestId('link-key').textContent());
    await page.getByTestId('link-approve').click();
    await second.getByTestId('link-confirm').waitFor({ timeout: 20_000 });
    expect(await second.getByTestId('link-account').textContent()).toBe(accountId);
    await second.getByTestId('link-accept').click();
    await page.getByTestId('link-done').waitFor({ timeout: 30_000 });
    await second.getByTestId('connection').filter({ hasText: 'online' }).waitFor({ timeout: 30_000 });
    await openDevicePage(second);
    expect(await second.getByTestId('account-id').textContent()).toBe(accountId);
    const secondId = (await second.getByTestId('device-id').textContent()) ?? '';
    await page.locator(`[data-testid="device"][data-device-id="${secondId}"]`).waitFor();
    await page.getByTestId('device-remove').click();
    await page.getByTestId('device-remove-confirm').click();
    const revoked = second.getByTestId('revoked');
    await revoked.waitFor({ timeout: 30_000 });
    expect(await revoked.evaluate((d) => d.matches(':modal'))).toBe(true);
    await second.getByTestId('revoked-wipe').click();
    await second.getByTestId('create-account').waitFor();
    expect(await second.evaluate(async () => (await indexedDB.databases()).map((d) => d.name))).not.toContain('umbra-device');
    await page.locator(`[data-testid="device"][data-device-id="${secondId}"]`).waitFor({ state: 'detached', timeout: 30_000 });
    expect(web.pageErrors).toEqual([]);
  }, 120_000);

  it('shows the same safety number on two pages and in the CLI, keeps "verified", and blocks the page with a warning when a handle moves to a new identity', async () => {
    const [hx, hy, hc] = [uniq('sx'), uniq('sy'), uniq('sc')];
    const x = await web.newPage();
    const y = await web.newPage(360, 740);
    await createAccount(x, hx);
    await createAccount(y, hy);
    const c = tmp('carol');
    const carol = await umbra(c, 'init');
    await umbra(c, 'register', '--handle', hc);

    await openChat(x, `@${hy}`);
    const xy = await safetyDigits(x);
    expect(xy).toMatch(/^\d{60}$/);
    const qrX = await expectQr(x.getByTestId('safety-qr'));
    await openChat(y, `@${hx}`);
    expect(await safetyDigits(y)).toBe(xy);
    const qrY = await expectQr(y.getByTestId('safety-qr'));
    // §11: each page's QR is the other's with local and remote swapped.
    expect(verifySafetyQr(qrX, qrY)).toBe(true);
    expect(verifySafetyQr(qrX, qrX)).toBe(false);
    expect(await y.getByTestId('safety-number').textContent()).toBe(xy);
    expect(await y.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(360);
    await y.getByTestId('safety-close').click();

    // Verified on X: kept across a reload.
    await x.getByTestId('mark-verified').click();
    await x.getByTestId('verified-state').filter({ hasText: /^Verified on / }).waitFor();
    await x.screenshot({ path: path.join(SCREENSHOTS, 'web-safety-number.png') });
    expect(readFileSync(path.join(SCREENSHOTS, 'web-safety-number.png')).subarray(1, 4).toString()).toBe('PNG');
    await x.getByTestId('safety-close').click();
    await x.getByTestId('safety-button').filter({ hasText: /✓ Verified/ }).waitFor();
    await x.reload();
    await x.getByTestId('conversation').filter({ hasText: `@${hy}` }).click();
    await x.getByTestId('safety-button').filter({ hasText: /✓ Verified/ }).waitFor();

    // With the CLI: the page and `umbra safety-number` show the same 60 digits.
    await openChat(x, `@${hc}`);
    await x.getByTestId('chat-title').filter({ hasText: `@${hc}` }).waitFor();
    const xc = await safetyDigits(x);
    expect(xc).not.toBe(xy);
    const fromCli = await json(c, 'safety-number', `@${hx}`);
    expect(fromCli.safetyNumber).toBe(xc.match(/.{5}/g)!.join(' '));
    // Comparing codes (§11's QR payloads): a wrong one is refused, the CLI's matches and marks Carol verified.
    await x.getByTestId('safety-compare-input').fill(qrY);
    await x.getByTestId('safety-compare').click();
    await x.getByTestId('safety-compare-result').filter({ hasText: 'do not match' }).waitFor();
    expect(await x.getByTestId('verified-state').textContent()).toBe('Not verified.');
    await x.getByTestId('safety-compare-input').fill(String(fromCli.qr));
    await x.getByTestId('safety-compare').click();
    await x.getByTestId('safety-compare-result').filter({ hasText: 'The codes match' }).waitFor();
    await x.getByTestId('verified-state').filter({ hasText: /^Verified on / }).waitFor();
    await x.getByTestId('safety-close').click();

    // Carol gives up her handle and a new identity claims it.
    await umbra(c, 'handle', 'clear');
    const c2 = tmp('carol2');
    const carol2 = await umbra(c2, 'init');
    await umbra(c2, 'register', '--handle', hc);
    expect(carol2).not.toBe(carol);

    await x.getByTestId('conversation').filter({ hasText: `@${hy}` }).click();
    await x.getByTestId('chat-title').filter({ hasText: `@${hy}` }).waitFor();
    expect(await x.getByTestId('identity-warning').count()).toBe(0);
    await x.getByTestId('conversation').filter({ hasText: `@${hc}` }).click();
    const warning = x.getByTestId('identity-warning');
    await warning.waitFor({ timeout: 30_000 });
    expect(await x.getByTestId('identity-previous').textContent()).toBe(carol);
    expect(await x.getByTestId('identity-current').textContent()).toBe(carol2);
    // Blocking: a modal dialog (the page behind it is inert) that Escape does not dismiss.
    expect(await warning.evaluate((d) => d.matches(':modal'))).toBe(true);
    await x.keyboard.press('Escape');
    await x.waitForTimeout(300);
    expect(await warning.evaluate((d) => d.matches(':modal'))).toBe(true);
    await expect(x.getByTestId('composer').click({ timeout: 1000 })).rejects.toThrow();
    await x.screenshot({ path: path.join(SCREENSHOTS, 'web-identity-warning.png') });

    // The new identity's number is the CLI's for the new identity; the old verification is gone.
    await x.getByTestId('identity-show-safety').click();
    const xc2 = (await x.getByTestId('safety-number').getAttribute('data-digits')) ?? '';
    expect(xc2).not.toBe(xc);
    expect((await json(c2, 'safety-number', `@${hx}`)).safetyNumber).toBe(xc2.match(/.{5}/g)!.join(' '));
    expect(await x.getByTestId('verified-state').textContent()).toBe('Not verified.');
    await x.getByTestId('safety-close').click();
    expect(await x.getByTestId('identity-warning').count()).toBe(0);
    await x.getByTestId('safety-button').filter({ hasText: 'Safety number' }).waitFor();
    // Acknowledged once: reopening the chat does not warn again.
    await x.getByTestId('conversation').filter({ hasText: `@${hy}` }).click();
    await x.getByTestId('conversation').filter({ hasText: `@${hc}` }).first().click();
    await x.getByTestId('chat-title').filter({ hasText: `@${hc}` }).waitFor();
    await new Promise((r) => setTimeout(r, 1000));
    expect(await x.getByTestId('identity-warning').count()).toBe(0);
    expect(web.pageErrors).toEqual([]);
  }, 240_000);
});

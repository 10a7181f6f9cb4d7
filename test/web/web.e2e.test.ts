import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { SCREENSHOTS, WebStack, createAccount } from '../support/web';

/**
 * The web client in a real Chromium against the real stack: built from clients/web, served by the
 * same edge `npm start` runs (strict CSP), two browsers register and chat live. Debian's chromium
 * must be installed (.ci/run does): without it this test fails.
 */
const ROOT = process.cwd();

describe('web client in Chromium', () => {
  let web: WebStack;
  let origin: string;
  let webDir: string;
  let cspViolations: string[];

  beforeAll(async () => {
    web = await WebStack.start();
    ({ origin, webDir } = web);
    cspViolations = web.pageErrors;
  });

  afterAll(async () => {
    await web?.stop();
  });

  const newPage = (width?: number, height?: number): Promise<Page> => web.newPage(width, height);

  it('type-checks (strict TypeScript; vite only strips types)', () => {
    const tsc = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'clients/web/tsconfig.json'], { cwd: ROOT, encoding: 'utf8' });
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.status).toBe(0);
  });

  it('serves index.html and hashed assets with a strict Content-Security-Policy and no inline script', async () => {
    const res = await fetch(`${origin}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-cache');
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("worker-src 'self'");
    expect(csp).toMatch(/connect-src 'self'/);
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('unsafe-eval');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await res.text();
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)];
    expect(scripts.length).toBeGreaterThan(0);
    for (const [, attrs, body] of scripts) {
      expect(attrs).toMatch(/\ssrc="\/assets\//);
      expect(body!.trim()).toBe('');
    }
    expect(html).not.toMatch(/\son[a-z]+=/i);
    const asset = readdirSync(path.join(webDir, 'assets')).find((f) => f.endsWith('.js'))!;
    const js = await fetch(`${origin}/assets/${asset}`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(js.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    // Outside the build: a 404, never a file of the host; API paths still reach the services.
    expect((await fetch(`${origin}/assets/..%2f..%2fpackage.json`)).status).toBe(404);
    expect((await fetch(`${origin}/nothing-here.js`)).status).toBe(404);
    expect((await fetch(`${origin}/v1/accounts/by-handle/nobody_${randomBytes(3).toString('hex')}`)).status).toBe(401);
  });

  // The two pages of the chat test, used again by the reload and wipe test after it.
  let alice: Page;
  let bob: Page;
  let aliceId = '';

  it('registers two accounts, starts a chat by handle and exchanges messages live both ways', async () => {
    const handle = `w${randomBytes(5).toString('hex')}`;
    alice = await newPage();
    bob = await newPage(360, 740);

    await createAccount(alice, handle);
    await alice.getByTestId('this-device').click();
    aliceId = (await alice.getByTestId('account-id').textContent()) ?? '';
    expect(aliceId).toMatch(/^um1/);
    expect(await alice.getByTestId('handle').textContent()).toBe(`@${handle}`);
    expect(Number(await alice.getByTestId('device-id').textContent())).toBeGreaterThan(0);
    await alice.getByTestId('this-device').click();

    await createAccount(bob);
    await bob.getByTestId('new-chat-input').fill(`@${handle}`);
    await bob.getByTestId('new-chat').click();
    await bob.getByTestId('chat-title').filter({ hasText: `@${handle}` }).waitFor();
    await bob.getByTestId('composer').fill('hello from bob');
    await bob.getByTestId('send').click();
    await bob.getByTestId('delivery-state').filter({ hasText: /sent|delivered|read/ }).waitFor();

    // Alice's page was open all along: the conversation and the message arrive over the socket.
    await alice.getByTestId('conversation').first().waitFor({ timeout: 15_000 });
    expect(await alice.getByTestId('unread').textContent()).toBe('1');
    await alice.getByTestId('conversation').first().click();
    await alice.getByTestId('message').filter({ hasText: 'hello from bob' }).waitFor();
    await alice.getByTestId('composer').fill('hi bob, from alice');
    await alice.keyboard.press('Enter');
    await bob.getByTestId('message').filter({ hasText: 'hi bob, from alice' }).waitFor({ timeout: 15_000 });
    expect(await bob.getByTestId('message').allTextContents()).toEqual([expect.stringContaining('hello from bob'), expect.stringContaining('hi bob, from alice')]);
    expect(await alice.getByTestId('message').evaluateAll((els) => els.map((e) => e.getAttribute('data-direction')))).toEqual(['in', 'out']);

    // Readable at 360 px: nothing wider than the screen.
    expect(await bob.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(360);
    await alice.screenshot({ path: path.join(SCREENSHOTS, 'web-chat.png') });
    await bob.screenshot({ path: path.join(SCREENSHOTS, 'web-chat-360.png') });
    expect(readFileSync(path.join(SCREENSHOTS, 'web-chat.png')).subarray(1, 4).toString()).toBe('PNG');
    expect(cspViolations).toEqual([]);
  });

  it('keeps the device and the history across a reload, encrypted in IndexedDB; "wipe this device" leaves nothing', async () => {
    // Nothing readable at rest: every stored value is AES-GCM ciphertext, no message text in it.
    const stored = await alice.evaluate(
      () =>
        new Promise<{ count: number; sealed: boolean; text: string }>((resolve, reject) => {
          const open = indexedDB.open('umbra-device');
          open.onerror = () => reject(open.error);
          open.onsuccess = () => {
            const req = open.result.transaction('values').objectStore('values').getAll();
            req.onerror = () => reject(req.error);
            req.onsuccess = () => {
              const values = req.result as { iv: Uint8Array; data: ArrayBuffer }[];
              const sealed = values.every((v) => v.iv instanceof Uint8Array && v.iv.length === 12 && v.data instanceof ArrayBuffer);
              const text = values.map((v) => String.fromCharCode(...new Uint8Array(v.data))).join('');
              open.result.close();
              resolve({ count: values.length, sealed, text });
            };
          };
        }),
    );
    expect(stored.count).toBeGreaterThan(5);
    expect(stored.sealed).toBe(true);
    expect(stored.text).not.toContain('hello from bob');
    expect(stored.text).not.toContain('hi bob, from alice');

    await alice.reload();
    await alice.getByTestId('connection').filter({ hasText: 'online' }).waitFor({ timeout: 15_000 });
    await alice.getByTestId('conversation').first().click();
    expect(await alice.getByTestId('message').allTextContents()).toEqual([expect.stringContaining('hello from bob'), expect.stringContaining('hi bob, from alice')]);
    await alice.getByTestId('this-device').click();
    expect(await alice.getByTestId('account-id').textContent()).toBe(aliceId);
    await alice.getByTestId('this-device').click();
    await alice.getByTestId('conversation').first().click();
    await bob.getByTestId('composer').fill('after your reload');
    await bob.getByTestId('send').click();
    await alice.getByTestId('message').filter({ hasText: 'after your reload' }).waitFor({ timeout: 15_000 });

    await bob.getByRole('button', { name: 'Back to conversations' }).click();
    await bob.getByTestId('this-device').click();
    await bob.getByTestId('wipe').click();
    await bob.getByTestId('wipe-confirm').click();
    await bob.getByTestId('create-account').waitFor();
    expect(await bob.evaluate(async () => (await indexedDB.databases()).map((d) => d.name))).not.toContain('umbra-device');
    await bob.reload();
    await bob.getByTestId('create-account').waitFor();
    expect(cspViolations).toEqual([]);
  });

  it('creates an account with the proof of work in a Web Worker and a progress indicator, and says why a chat cannot start', async () => {
    const page = await newPage();
    const workers: string[] = [];
    page.on('worker', (w) => workers.push(w.url()));
    // Registration held back for a moment, so the progress indicator is seen while the page keeps working.
    await page.route('**/v1/accounts', async (route) => {
      await new Promise((r) => setTimeout(r, 1500));
      await route.continue();
    });
    await page.getByTestId('create-account').click();
    await page.getByTestId('pow-progress').waitFor();
    expect(await page.getByTestId('create-account').isDisabled()).toBe(true);
    await page.getByTestId('pow-progress').filter({ hasText: /[1-9] s/ }).waitFor({ timeout: 5000 });
    await page.getByTestId('connection').filter({ hasText: 'online' }).waitFor({ timeout: 30_000 });
    expect(workers.some((url) => /\/assets\/pow\.worker-[\w-]+\.js$/.test(url))).toBe(true);
    await page.unroute('**/v1/accounts');

    await page.getByTestId('new-chat-input').fill(`@nobody_${randomBytes(4).toString('hex')}`);
    await page.getByTestId('new-chat').click();
    await expect(page.getByTestId('error').textContent()).resolves.toMatch(/No account/);
    await page.getByTestId('new-chat-input').fill('@x');
    await page.getByTestId('new-chat').click();
    await page.getByTestId('error').filter({ hasText: /3–32 letters/ }).waitFor();
    await page.screenshot({ path: path.join(SCREENSHOTS, 'web-start.png') });
    expect(cspViolations).toEqual([]);
  });
});

import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Page, Route } from 'playwright-core';
import { attachmentEsize } from '@umbra/crypto';
import { SCREENSHOTS, WebStack, createAccount, openChat } from '../support/web';

const MiB = 1024 * 1024;

/**
 * Files and voice messages in the web client, in a real Chromium against the real stack and the
 * embedded S3 (signatures checked, CORS as a bucket set up for browsers): the page encrypts with
 * WebCrypto and uploads parts straight to the store, the peer's page downloads and verifies.
 */
describe('web client: files and voice messages', () => {
  let web: WebStack;
  let dir: string;
  let s3dir: string;
  let s3origin: string;
  let alice: Page;
  let bob: Page;

  beforeAll(async () => {
    web = await WebStack.start({
      withS3: true,
      env: {
        ATTACHMENT_MULTIPART_THRESHOLD_BYTES: String(5 * MiB),
        ATTACHMENT_PART_BYTES: String(5 * MiB),
        ATTACHMENT_MAX_BYTES: String(100 * MiB),
        ATTACHMENT_QUOTA_BYTES_PER_DAY: String(400 * MiB),
      },
    });
    s3dir = `/tmp/umbra-test-s3-${web.stack.env.REDIS_PREFIX}`;
    s3origin = new URL(web.stack.env.S3_ENDPOINT!).origin;
    dir = await mkdtemp(path.join(tmpdir(), 'umbra-web-files-'));
    const aliceHandle = `fa${randomBytes(4).toString('hex')}`;
    const bobHandle = `fb${randomBytes(4).toString('hex')}`;
    alice = await web.newPage();
    bob = await web.newPage();
    await createAccount(alice, aliceHandle);
    await createAccount(bob, bobHandle);
    await openChat(alice, `@${bobHandle}`);
    await openChat(bob, `@${aliceHandle}`);
  }, 120_000);

  afterAll(async () => {
    await web?.stop();
    await rm(dir, { recursive: true, force: true });
    if (s3dir) await rm(s3dir, { recursive: true, force: true });
  });

  async function file(name: string, size: number): Promise<{ path: string; sha256: string }> {
    const bytes = randomBytes(size);
    const p = path.join(dir, name);
    await writeFile(p, bytes);
    return { path: p, sha256: createHash('sha256').update(bytes).digest('hex') };
  }

  async function attach(page: Page, filePath: string, testId = 'attach'): Promise<void> {
    const [chooser] = await Promise.all([page.waitForEvent('filechooser'), page.getByTestId(testId).click()]);
    await chooser.setFiles(filePath);
  }

  /** Collects every value a progress bar with this test id takes on the page, from now on. */
  async function recordProgress(page: Page, testId: string): Promise<() => Promise<{ value: number; max: number }[]>> {
    const slot = `__progress_${testId.replace(/-/g, '_')}`;
    await page.evaluate(
      ({ testId, slot }) => {
        const seen: { value: number; max: number }[] = [];
        (window as unknown as Record<string, unknown>)[slot] = seen;
        const look = () => {
          for (const el of document.querySelectorAll<HTMLProgressElement>(`progress[data-testid="${testId}"]`)) {
            if (!el.hasAttribute('value')) continue;
            const last = seen.at(-1);
            if (!last || last.value !== el.value || last.max !== el.max) seen.push({ value: el.value, max: el.max });
          }
        };
        new MutationObserver(look).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['value', 'max'] });
      },
      { testId, slot },
    );
    return () => page.evaluate((slot) => (window as unknown as Record<string, { value: number; max: number }[]>)[slot]!, slot);
  }

  async function saveAndHash(page: Page, bubble: ReturnType<Page['getByTestId']>): Promise<string> {
    const [download] = await Promise.all([page.waitForEvent('download'), bubble.getByTestId('file-save').click()]);
    return createHash('sha256')
      .update(await readFile((await download.path())!))
      .digest('hex');
  }

  /** Draws a 96×64 PNG in the page and drops it on the open chat as a file. */
  async function dropImage(page: Page, name: string): Promise<void> {
    await page.evaluate(async (name) => {
      const canvas = document.createElement('canvas');
      canvas.width = 96;
      canvas.height = 64;
      const g = canvas.getContext('2d')!;
      g.fillStyle = '#3056d3';
      g.fillRect(0, 0, 96, 64);
      g.fillStyle = '#ffffff';
      g.fillRect(16, 16, 64, 32);
      const blob = await new Promise<Blob>((r) => canvas.toBlob((b) => r(b!), 'image/png'));
      const dt = new DataTransfer();
      dt.items.add(new File([blob], name, { type: 'image/png' }));
      const chat = document.querySelector('.chat')!;
      chat.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
      chat.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, name);
  }

  const bubbleNamed = (page: Page, name: string) => page.getByTestId('file').filter({ has: page.getByTestId('file-name').filter({ hasText: name }) });

  it('sends a 20 MiB file page to page with upload progress; it downloads verified with progress and its SHA-256 matches', async () => {
    const big = await file('twenty.bin', 20 * MiB);
    const uploaded = await recordProgress(alice, 'file-progress');
    const downloaded = await recordProgress(bob, 'download-progress');
    // Uploads at 16 MiB/s (Chromium's network emulation): on loopback a 5 MiB part otherwise finishes
    // between two progress events, and whether steps show within a part would depend on the machine.
    const cdp = await alice.context().newCDPSession(alice);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 16 * MiB });
    await attach(alice, big.path);
    await alice.getByTestId('file-progress').waitFor();

    const incoming = bubbleNamed(bob, 'twenty.bin');
    await incoming.waitFor({ timeout: 90_000 });
    await alice.getByTestId('upload').waitFor({ state: 'detached', timeout: 30_000 });
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    await bubbleNamed(alice, 'twenty.bin').waitFor();

    const esize = attachmentEsize(20 * MiB);
    const up = await uploaded();
    // Steps while each 5 MiB part goes out (XMLHttpRequest upload progress), not only one per part, rising to the whole encrypted size.
    expect(up.length).toBeGreaterThan(Math.ceil(esize / (5 * MiB)));
    expect(up.every((p, i) => p.max === esize && (i === 0 || p.value > up[i - 1]!.value))).toBe(true);
    expect(up.at(-1)!.value).toBe(esize);

    // Not an image or audio: nothing is fetched until asked.
    expect(await incoming.getByTestId('file-save').count()).toBe(0);
    await incoming.getByTestId('file-download').click();
    await incoming.getByTestId('file-save').waitFor({ timeout: 60_000 });
    const down = await downloaded();
    expect(down.length).toBeGreaterThanOrEqual(2);
    expect(down.every((p) => p.max === esize)).toBe(true);
    expect(await saveAndHash(bob, incoming)).toBe(big.sha256);
    expect(web.pageErrors).toEqual([]);
  }, 180_000);

  it('sends an image dropped on the chat; the peer sees it inline once decrypted', async () => {
    await dropImage(alice, 'drawing.png');
    const preview = bubbleNamed(bob, 'drawing.png').getByTestId('file-preview');
    await preview.waitFor({ timeout: 30_000 });
    await bob.waitForFunction(() => {
      const img = [...document.querySelectorAll<HTMLImageElement>('[data-testid="file-preview"]')].at(-1);
      return img?.complete && img.naturalWidth === 96 && img.naturalHeight === 64;
    });
    expect(await preview.getAttribute('src')).toMatch(/^blob:/);
    // The sender shows its own image from the picked file, without fetching it back.
    await bubbleNamed(alice, 'drawing.png').getByTestId('file-preview').waitFor();
    expect(web.pageErrors).toEqual([]);
  }, 60_000);

  it('a file deleted for everyone leaves the page and its decrypted copy is released', async () => {
    await dropImage(alice, 'regret.png');
    const preview = bubbleNamed(bob, 'regret.png').getByTestId('file-preview');
    await preview.waitFor({ timeout: 30_000 });
    const src = (await preview.getAttribute('src'))!;
    const loads = (url: string) =>
      bob.evaluate((u) => new Promise<boolean>((resolve) => Object.assign(new Image(), { onload: () => resolve(true), onerror: () => resolve(false), src: u })), url);
    expect(await loads(src)).toBe(true);
    await alice.getByTestId('message').filter({ has: alice.getByTestId('file-name').filter({ hasText: 'regret.png' }) }).getByTestId('action-delete').click();
    await bubbleNamed(bob, 'regret.png').waitFor({ state: 'detached', timeout: 15_000 });
    // The blob URL is revoked once the page has taken the message out (a moment after the bubble goes).
    for (let i = 0; i < 50 && (await loads(src)); i++) await new Promise((r) => setTimeout(r, 200));
    expect(await loads(src)).toBe(false);
    expect(web.pageErrors).toEqual([]);
  }, 60_000);

  it('resumes an upload interrupted by a reload: picking the same file sends only the missing parts', async () => {
    const f = await file('resume.bin', 12 * MiB);
    const held: Route[] = [];
    const partOf = (url: string) => Number(new URL(url).searchParams.get('partNumber') ?? 0);
    const hold = (url: URL) => url.origin === s3origin && partOf(url.href) >= 2;
    await alice.route(hold, (route) => {
      if (route.request().method() === 'OPTIONS') return route.continue();
      held.push(route);
      return undefined;
    });
    const partOneStored = alice.waitForResponse((r) => r.request().method() === 'PUT' && partOf(r.url()) === 1 && r.status() === 200, { timeout: 30_000 });
    await attach(alice, f.path);
    // Part 1 is stored; parts 2 and 3 hang until the page goes away.
    await partOneStored;
    await alice.getByTestId('file-progress').waitFor();
    await alice.reload();
    for (const r of held) await r.abort().catch(() => undefined);
    await alice.unroute(hold);

    await alice.getByTestId('connection').filter({ hasText: 'online' }).waitFor({ timeout: 15_000 });
    await alice.getByTestId('conversation').first().click();
    const interrupted = alice.getByTestId('upload').filter({ hasText: 'resume.bin' });
    await interrupted.getByTestId('upload-interrupted').waitFor();
    await alice.screenshot({ path: path.join(SCREENSHOTS, 'web-file-resume.png') });

    const puts: number[] = [];
    alice.on('request', (r) => {
      if (r.method() === 'PUT' && r.url().startsWith(s3origin)) puts.push(partOf(r.url()));
    });
    await attach(alice, f.path, 'upload-resume');
    const incoming = bubbleNamed(bob, 'resume.bin');
    await incoming.waitFor({ timeout: 60_000 });
    expect(puts.sort()).toEqual([2, 3]);
    await expect(alice.getByTestId('upload').count()).resolves.toBe(0);
    await incoming.getByTestId('file-download').click();
    await incoming.getByTestId('file-save').waitFor({ timeout: 60_000 });
    expect(await saveAndHash(bob, incoming)).toBe(f.sha256);
    expect(web.pageErrors).toEqual([]);
  }, 180_000);

  it('shows a clear verification error for a file changed in the store, and offers nothing to save', async () => {
    const size = 200_003;
    const f = await file('changed.bin', size);
    await attach(alice, f.path);
    const incoming = bubbleNamed(bob, 'changed.bin');
    await incoming.waitFor({ timeout: 30_000 });
    // The one stored object of this size: flip a byte inside its second chunk.
    const objects = path.join(s3dir, 'umbra-test', 'att');
    let target: string | undefined;
    for (const name of await readdir(objects)) {
      if (name.endsWith('._S3rver_object') && (await stat(path.join(objects, name))).size === attachmentEsize(size)) target = path.join(objects, name);
    }
    expect(target).toBeDefined();
    const blob = await readFile(target!);
    blob[56 + 70_000]! ^= 1;
    await writeFile(target!, blob);

    await incoming.getByTestId('file-download').click();
    const error = incoming.getByTestId('file-error');
    await error.waitFor({ timeout: 30_000 });
    expect(await error.textContent()).toMatch(/failed verification .*changed or damaged/);
    expect(await incoming.getByTestId('file-save').count()).toBe(0);
    expect(web.pageErrors).toEqual([]);
  }, 60_000);

  it('records a voice message with the microphone; it arrives and plays', async () => {
    await alice.getByTestId('voice-record').click();
    await alice.getByTestId('voice-elapsed').waitFor();
    await new Promise((r) => setTimeout(r, 2000));
    await alice.getByTestId('voice-record').click();

    const audio = bob.getByTestId('voice-audio').last();
    await audio.waitFor({ timeout: 30_000 });
    expect(await audio.getAttribute('src')).toMatch(/^blob:/);
    const played = await audio.evaluate(async (el: HTMLAudioElement) => {
      el.muted = true;
      await el.play();
      await new Promise((resolve) => el.addEventListener('ended', resolve, { once: true }));
      return { duration: el.duration, currentTime: el.currentTime };
    });
    expect(played.currentTime).toBeGreaterThan(1);
    expect(played.duration).toBeGreaterThan(1);
    // The pointer carries the recorded time, shown in the bubble.
    expect(await bob.getByTestId('file').filter({ has: bob.getByTestId('voice-audio') }).last().textContent()).toMatch(/0:0[2-3]/);

    // The receiving page: a verified download, an inline image, a refused file, a voice message.
    await bob.screenshot({ path: path.join(SCREENSHOTS, 'web-file.png') });
    expect((await readFile(path.join(SCREENSHOTS, 'web-file.png'))).subarray(1, 4).toString()).toBe('PNG');
    // Readable on a 360 px phone: the bubbles, the player and the composer's buttons fit the screen.
    await bob.setViewportSize({ width: 360, height: 740 });
    await bob.getByTestId('attach').waitFor();
    expect(await bob.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(360);
    expect(await bob.getByTestId('conversation').first().textContent()).toContain('Voice message');
    expect(web.pageErrors).toEqual([]);
  }, 60_000);
});

import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DataSource } from 'typeorm';
import { Redis } from 'ioredis';
import type { Page } from 'playwright-core';
import { dumpRedis, searchFiles, searchPostgres } from '../support/dumps';
import { TEST_DATABASE_URL, TEST_REDIS_URL } from '../support/harness';
import { SCREENSHOTS, WebStack, createAccount, openChat } from '../support/web';
import { corruptRecord, hideStorageKey, replaceRecord, restoreRecord, restoreStorageKey, storedValues, upgradeDatabase } from '../support/web-idb';

/**
 * The web client when things go wrong, and what the servers keep of a web conversation: a gateway
 * that goes away drops the socket (the page says so, a send fails visibly, nothing already shown is
 * lost, and both pages carry on once a gateway is back); a server answering 5xx is named as such;
 * stored state the page cannot read is reported and left alone until the person wipes it; and no
 * message text, file name or file content of a web chat is in Postgres, Redis, the S3 store, the
 * logs or /metrics.
 */
describe('web client: a dropped socket, a failing server, unreadable stored state, and nothing readable on the servers', () => {
  let web: WebStack;
  let alice: Page;
  let bob: Page;
  let dir: string;
  let s3dir: string;
  const markers = [`web-secret-${randomBytes(6).toString('hex')}`, `web-reply-${randomBytes(6).toString('hex')}`];
  // A file sent from the page: one marker in its name, one in its bytes.
  const fileName = `web-file-name-${randomBytes(6).toString('hex')}.txt`;
  const fileBytesMarker = `web-file-bytes-${randomBytes(6).toString('hex')}`;
  const allMarkers = [...markers, fileName.replace(/\.txt$/, ''), fileBytesMarker];

  const online = (page: Page) => page.getByTestId('connection').filter({ hasText: 'online' }).waitFor({ timeout: 30_000 });
  const messages = (page: Page) => page.getByTestId('message').allTextContents();

  beforeAll(async () => {
    web = await WebStack.start({ withS3: true });
    s3dir = `/tmp/umbra-test-s3-${web.stack.env.REDIS_PREFIX}`;
    dir = await mkdtemp(path.join(tmpdir(), 'umbra-web-resilience-'));
    const handle = `r${randomBytes(5).toString('hex')}`;
    alice = await web.newPage();
    bob = await web.newPage();
    await createAccount(alice, handle);
    await createAccount(bob);
    await openChat(bob, `@${handle}`);
    await bob.getByTestId('composer').fill(markers[0]!);
    await bob.getByTestId('send').click();
    await alice.getByTestId('conversation').first().waitFor({ timeout: 15_000 });
    await alice.getByTestId('conversation').first().click();
    await alice.getByTestId('message').filter({ hasText: markers[0]! }).waitFor({ timeout: 15_000 });
    await alice.getByTestId('composer').fill(markers[1]!);
    await alice.getByTestId('send').click();
    await bob.getByTestId('message').filter({ hasText: markers[1]! }).waitFor({ timeout: 15_000 });

    // Alice sends a file through the page (WebCrypto, straight to the S3 store); Bob downloads it verified.
    const filePath = path.join(dir, fileName);
    await writeFile(filePath, `${fileBytesMarker}\n`.repeat(2000));
    const [chooser] = await Promise.all([alice.waitForEvent('filechooser'), alice.getByTestId('attach').click()]);
    await chooser.setFiles(filePath);
    const incoming = bob.getByTestId('file').filter({ has: bob.getByTestId('file-name').filter({ hasText: fileName }) });
    await incoming.waitFor({ timeout: 30_000 });
    await incoming.getByTestId('file-download').click();
    await incoming.getByTestId('file-save').waitFor({ timeout: 30_000 });
  }, 120_000);

  afterAll(async () => {
    await web?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
    if (s3dir) await rm(s3dir, { recursive: true, force: true });
  });

  it('a gateway going away: both pages show it, a send waits as "sending…", nothing shown is lost, and everything arrives once a gateway is back', async () => {
    const [gateway] = web.stack.of('gateway');
    await web.stack.stopInstance(gateway!);
    for (const page of [alice, bob]) await page.getByTestId('connection').filter({ hasText: 'connecting' }).waitFor({ timeout: 15_000 });
    // Past a short reconnect, each page says the server is out of reach and that nothing is lost.
    for (const page of [alice, bob]) await page.getByTestId('offline-note').filter({ hasText: 'Everything here is kept' }).waitFor({ timeout: 15_000 });

    await bob.getByTestId('composer').fill('while the server is down');
    await bob.getByTestId('send').click();
    const pending = bob.getByTestId('message').filter({ hasText: 'while the server is down' });
    await pending.waitFor();
    await new Promise((r) => setTimeout(r, 2000));
    expect(await pending.getByTestId('delivery-state').textContent()).toMatch(/sending/);
    for (const page of [alice, bob]) {
      expect(await messages(page)).toEqual(expect.arrayContaining([expect.stringContaining(markers[0]!), expect.stringContaining(markers[1]!)]));
    }

    await web.stack.startInstance('gateway', `gateway-back-${randomBytes(3).toString('hex')}`);
    await online(alice);
    await online(bob);
    for (const page of [alice, bob]) await page.getByTestId('offline-note').waitFor({ state: 'detached', timeout: 5000 });
    // The send waiting in the SDK's outbox goes out on reconnect; a new one goes out as usual.
    await alice.getByTestId('message').filter({ hasText: 'while the server is down' }).waitFor({ timeout: 30_000 });
    await pending.getByTestId('delivery-state').filter({ hasText: /sent|delivered|read/ }).waitFor({ timeout: 30_000 });
    await bob.getByTestId('composer').fill('after the gateway came back');
    await bob.getByTestId('send').click();
    await alice.getByTestId('message').filter({ hasText: 'after the gateway came back' }).waitFor({ timeout: 30_000 });
    expect((await messages(alice)).filter((t) => t.includes('while the server is down'))).toHaveLength(1);
    expect(web.pageErrors).toEqual([]);
  });

  it('no message text, file name or file content of the web conversation is in Postgres, Redis, the S3 store, the logs or /metrics', async () => {
    const db = new DataSource({ type: 'postgres', url: TEST_DATABASE_URL });
    await db.initialize();
    const redis = new Redis(TEST_REDIS_URL);
    try {
      const forms = allMarkers.flatMap((m) => [m, Buffer.from(m).toString('hex'), Buffer.from(m).toString('base64url'), Buffer.from(m).toString('base64')]);
      const pg = await searchPostgres(db, forms);
      expect(pg.rows).toBeGreaterThan(0);
      expect(pg.found).toEqual([]);
      const redisText = await dumpRedis(redis, `${web.stack.env.REDIS_PREFIX}*`);
      expect(redisText.length).toBeGreaterThan(0);
      const metrics = await Promise.all(web.stack.instances.map(async (i) => (await fetch(`${i.svc.url}/metrics`)).text()));
      const logs = web.stack.logs.text();
      expect(logs.length).toBeGreaterThan(1000);
      for (const f of forms) {
        expect({ marker: f, inRedis: redisText.includes(f) }).toEqual({ marker: f, inRedis: false });
        expect({ marker: f, inLogs: logs.includes(f) }).toEqual({ marker: f, inLogs: false });
        expect({ marker: f, inMetrics: metrics.some((t) => t.includes(f)) }).toEqual({ marker: f, inMetrics: false });
      }

      // The S3 store holds the file (its encrypted bytes are at least as long as the plaintext), and no marker.
      const s3 = await searchFiles(s3dir, forms);
      expect(s3.files).toBeGreaterThan(0);
      expect(s3.bytes).toBeGreaterThan((fileBytesMarker.length + 1) * 2000);
      expect(s3.found).toEqual([]);
      // The search would see a marker there: a control object holding one is found.
      const control = path.join(s3dir, 'control-object');
      await writeFile(control, `ciphertext? ${fileBytesMarker} no`);
      try {
        expect((await searchFiles(s3dir, forms)).found).toEqual([{ needle: fileBytesMarker, file: control }]);
      } finally {
        await rm(control);
      }

      // The text and the file really went through these servers (as ciphertext): the pages show them.
      expect(await messages(alice)).toEqual(expect.arrayContaining([expect.stringContaining(markers[0]!)]));
      expect(await bob.getByTestId('file-name').allTextContents()).toEqual(expect.arrayContaining([expect.stringContaining(fileName)]));
    } finally {
      redis.disconnect();
      await db.destroy();
    }
  });

  it('a server answering 5xx: the page says the server is unavailable, and keeps what it holds', async () => {
    const failing = async (page: Page) => {
      await page.route('**/v1/**', (route) =>
        route.fulfill({ status: 503, contentType: 'application/json', body: JSON.stringify({ error: { code: 'UNAVAILABLE', message: 'maintenance' } }) }),
      );
    };
    // A new browser: creating an account fails with a message, and the form stays usable.
    const fresh = await web.newPage();
    await failing(fresh);
    await fresh.getByTestId('create-account').click();
    await fresh.getByTestId('error').filter({ hasText: 'The server is unavailable; try again shortly.' }).waitFor({ timeout: 15_000 });
    expect(await fresh.getByTestId('create-account').isEnabled()).toBe(true);

    // A device with history, reloaded while the server fails (a proxy's HTML 502): its chats are all there.
    await alice.route('**/v1/**', (route) => route.fulfill({ status: 502, contentType: 'text/html', body: '<html><body>502 Bad Gateway</body></html>' }));
    await alice.reload();
    await alice.getByTestId('conversation').first().click();
    await alice.getByTestId('message').filter({ hasText: markers[0]! }).waitFor({ timeout: 15_000 });
    await alice.getByTestId('new-chat-input').fill(`@n${randomBytes(5).toString('hex')}`);
    await alice.getByTestId('new-chat').click();
    await alice.getByTestId('error').filter({ hasText: 'The server is unavailable; try again shortly.' }).waitFor({ timeout: 15_000 });
    await alice.unroute('**/v1/**');
    await alice.reload();
    await online(alice);
    expect(web.pageErrors).toEqual([]);
  });

  it('stored state the page cannot read: a specific message, a retry, nothing deleted until the person wipes the device', async () => {
    const stateError = bob.getByTestId('state-error');
    const before = await storedValues(bob);
    expect(before.count).toBeGreaterThan(5);

    // A stored ciphertext altered: named as damaged, every record left as it was, including the altered one.
    const original = await corruptRecord(bob, 'identity');
    await bob.reload();
    await stateError.waitFor({ timeout: 15_000 });
    expect(await stateError.textContent()).toMatch(/damaged.*identity cannot be decrypted.*Nothing has been deleted/);
    await bob.screenshot({ path: path.join(SCREENSHOTS, 'web-state-error.png') });
    const after = await storedValues(bob);
    expect(after.count).toBe(before.count);
    expect(after.hasKey).toBe(true);
    expect(after.records.identity).not.toEqual(original.data);
    expect(after.records.identity).toHaveLength(original.data.length);
    // Retry reloads and reads again (still damaged, still nothing deleted); repaired, the device is back with its history.
    await bob.getByTestId('retry').click();
    await stateError.waitFor({ timeout: 15_000 });
    expect((await storedValues(bob)).count).toBe(before.count);
    await restoreRecord(bob, 'identity', original);
    await bob.reload();
    await online(bob);
    await bob.getByTestId('conversation').first().click();
    await bob.getByTestId('message').filter({ hasText: markers[1]! }).waitFor({ timeout: 15_000 });

    // The storage key gone: said so, and the records stay.
    await hideStorageKey(bob);
    await bob.reload();
    await stateError.filter({ hasText: /key that protects .* is missing/ }).waitFor({ timeout: 15_000 });
    expect((await storedValues(bob)).count).toBe(before.count);
    await restoreStorageKey(bob);

    // A record that is not one this page wrote (another script, a bad extension): named, and left there.
    await replaceRecord(bob, 'umbra/ready', '1');
    await bob.reload();
    await stateError.filter({ hasText: /umbra\/ready is not a record this page wrote/ }).waitFor({ timeout: 15_000 });
    expect((await storedValues(bob)).count).toBe(before.count);

    // The database unopenable (a newer version than this page knows).
    await upgradeDatabase(bob);
    await bob.reload();
    await stateError.filter({ hasText: /cannot be opened/ }).waitFor({ timeout: 15_000 });
    expect((await storedValues(bob)).count).toBe(before.count);

    // The person chooses to wipe: confirmed first, then the welcome screen, and the database is gone.
    await bob.getByTestId('wipe').click();
    expect((await storedValues(bob)).count).toBe(before.count);
    await bob.getByTestId('wipe-confirm').click();
    await bob.getByTestId('create-account').waitFor({ timeout: 15_000 });
    expect(await bob.evaluate(async () => (await indexedDB.databases()).map((d) => d.name))).not.toContain('umbra-device');
    expect(web.pageErrors).toEqual([]);
  });
});

import { randomBytes } from 'node:crypto';
import { DataSource } from 'typeorm';
import { Redis } from 'ioredis';
import type { Page } from 'playwright-core';
import { dumpRedis, searchPostgres } from '../support/dumps';
import { TEST_DATABASE_URL, TEST_REDIS_URL } from '../support/harness';
import { WebStack, createAccount, openChat } from '../support/web';

/**
 * The web client when things go wrong, and what the servers keep of a web conversation: a gateway
 * that goes away drops the socket (the page says so, a send fails visibly, nothing already shown is
 * lost, and both pages carry on once a gateway is back), and no message text of a web chat is in
 * Postgres, Redis, the logs or /metrics.
 */
describe('web client: a dropped socket, and nothing readable on the servers', () => {
  let web: WebStack;
  let alice: Page;
  let bob: Page;
  const markers = [`web-secret-${randomBytes(6).toString('hex')}`, `web-reply-${randomBytes(6).toString('hex')}`];

  const online = (page: Page) => page.getByTestId('connection').filter({ hasText: 'online' }).waitFor({ timeout: 30_000 });
  const messages = (page: Page) => page.getByTestId('message').allTextContents();

  beforeAll(async () => {
    web = await WebStack.start();
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
  });

  afterAll(async () => {
    await web?.stop();
  });

  it('a gateway going away: both pages show it, a send waits as "sending…", nothing shown is lost, and everything arrives once a gateway is back', async () => {
    const [gateway] = web.stack.of('gateway');
    await web.stack.stopInstance(gateway!);
    for (const page of [alice, bob]) await page.getByTestId('connection').filter({ hasText: 'connecting' }).waitFor({ timeout: 15_000 });

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
    // The send waiting in the SDK's outbox goes out on reconnect; a new one goes out as usual.
    await alice.getByTestId('message').filter({ hasText: 'while the server is down' }).waitFor({ timeout: 30_000 });
    await pending.getByTestId('delivery-state').filter({ hasText: /sent|delivered|read/ }).waitFor({ timeout: 30_000 });
    await bob.getByTestId('composer').fill('after the gateway came back');
    await bob.getByTestId('send').click();
    await alice.getByTestId('message').filter({ hasText: 'after the gateway came back' }).waitFor({ timeout: 30_000 });
    expect((await messages(alice)).filter((t) => t.includes('while the server is down'))).toHaveLength(1);
    expect(web.pageErrors).toEqual([]);
  });

  it('no message text of the web conversation is in Postgres, Redis, the logs or /metrics', async () => {
    const db = new DataSource({ type: 'postgres', url: TEST_DATABASE_URL });
    await db.initialize();
    const redis = new Redis(TEST_REDIS_URL);
    try {
      const pg = await searchPostgres(db, markers);
      expect(pg.rows).toBeGreaterThan(0);
      expect(pg.found).toEqual([]);
      const redisText = await dumpRedis(redis, `${web.stack.env.REDIS_PREFIX}*`);
      expect(redisText.length).toBeGreaterThan(0);
      const metrics = await Promise.all(web.stack.instances.map(async (i) => (await fetch(`${i.svc.url}/metrics`)).text()));
      const logs = web.stack.logs.text();
      expect(logs.length).toBeGreaterThan(1000);
      for (const m of markers) {
        const forms = [m, Buffer.from(m).toString('hex'), Buffer.from(m).toString('base64url'), Buffer.from(m).toString('base64')];
        for (const f of forms) {
          expect({ marker: f, inRedis: redisText.includes(f) }).toEqual({ marker: f, inRedis: false });
          expect({ marker: f, inLogs: logs.includes(f) }).toEqual({ marker: f, inLogs: false });
          expect({ marker: f, inMetrics: metrics.some((t) => t.includes(f)) }).toEqual({ marker: f, inMetrics: false });
        }
      }
      // The text really went through these servers (as ciphertext): the page shows it.
      expect(await messages(alice)).toEqual(expect.arrayContaining([expect.stringContaining(markers[0]!)]));
    } finally {
      redis.disconnect();
      await db.destroy();
    }
  });
});

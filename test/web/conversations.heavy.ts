import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { DataSource } from 'typeorm';
import { decodeAccountId } from '@umbra/crypto';
import { TEST_DATABASE_URL, waitFor } from '../support/harness';
import { SCREENSHOTS, WebStack, createAccount, openChat } from '../support/web';

/**
 * Conversations in the web client, three browsers against the real stack (issue 16): groups with a
 * third member joining, vanishing messages gone from the pages, IndexedDB and Postgres, and reply,
 * react, edit, delete for everyone, typing and read receipts converging across pages.
 */
describe('web client conversations in Chromium', () => {
  let web: WebStack;
  let db: DataSource;
  let alice: Page;
  let bob: Page;
  let carol: Page;
  const tag = randomBytes(3).toString('hex');
  const handles = { alice: `ca${tag}`, bob: `cb${tag}`, carol: `cc${tag}` };
  let aliceId = '';

  beforeAll(async () => {
    web = await WebStack.start({ instances: { 'expiry-worker': 1 } });
    db = new DataSource({ type: 'postgres', url: TEST_DATABASE_URL });
    await db.initialize();
    [alice, bob, carol] = await Promise.all([web.newPage(), web.newPage(), web.newPage(360, 740)]);
    await createAccount(alice, handles.alice);
    await createAccount(bob, handles.bob);
    await createAccount(carol, handles.carol);
    await alice.getByTestId('this-device').click();
    aliceId = (await alice.getByTestId('account-id').textContent()) ?? '';
    await alice.getByTestId('this-device').click();
  }, 120_000);

  afterAll(async () => {
    await db?.destroy();
    await web?.stop();
  });

  const message = (page: Page, text: string) => page.getByTestId('message').filter({ hasText: text });
  const openConversation = (page: Page, name: string) => page.getByTestId('conversation').filter({ hasText: name }).click();
  const send = async (page: Page, text: string) => {
    await page.getByTestId('composer').fill(text);
    await page.getByTestId('send').click();
  };
  /** The keys of this page's IndexedDB store (names only: every value is encrypted). */
  const storedKeys = (page: Page) =>
    page.evaluate(
      () =>
        new Promise<string[]>((resolve, reject) => {
          const open = indexedDB.open('umbra-device');
          open.onerror = () => reject(open.error);
          open.onsuccess = () => {
            const req = open.result.transaction('values').objectStore('values').getAllKeys();
            req.onerror = () => reject(req.error);
            req.onsuccess = () => {
              open.result.close();
              resolve(req.result.map(String));
            };
          };
        }),
    );

  it('creates a group by name and handles; a third member joins; messages arrive live; removal; unread kept across a reload', async () => {
    await alice.getByTestId('new-group').click();
    await alice.getByTestId('group-members').fill(`@nobody_${tag}`);
    await alice.getByTestId('create-group').click();
    await alice.getByTestId('error').filter({ hasText: /name/ }).waitFor();
    await alice.getByTestId('group-name').fill('Trip planning');
    await alice.getByTestId('create-group').click();
    await alice.getByTestId('error').filter({ hasText: /No account/ }).waitFor();
    await alice.getByTestId('group-members').fill(`@${handles.bob}`);
    await alice.getByTestId('create-group').click();
    await alice.getByTestId('chat-title').filter({ hasText: 'Trip planning' }).waitFor();
    await send(alice, 'hello group');

    await bob.getByTestId('conversation').filter({ hasText: 'Trip planning' }).waitFor({ timeout: 15_000 });
    expect(await bob.getByTestId('conversation').filter({ hasText: 'Trip planning' }).getAttribute('data-kind')).toBe('group');
    expect(await bob.getByTestId('conversation').filter({ hasText: 'Trip planning' }).getByTestId('unread').textContent()).toBe('1');
    await openConversation(bob, 'Trip planning');
    await message(bob, 'hello group').waitFor();

    await alice.getByTestId('members').click();
    await alice.getByTestId('add-member-input').fill(`@${handles.carol}`);
    await alice.getByTestId('add-member').click();
    await alice.getByTestId('member').nth(2).waitFor();
    await alice.getByTestId('member').filter({ hasText: `@${handles.carol}` }).waitFor();

    await carol.getByTestId('conversation').filter({ hasText: 'Trip planning' }).waitFor({ timeout: 15_000 });
    await openConversation(carol, 'Trip planning');
    await send(alice, 'welcome carol');
    await message(carol, 'welcome carol').waitFor({ timeout: 15_000 });
    await message(bob, 'welcome carol').waitFor({ timeout: 15_000 });
    // A member who joined later does not get the messages from before.
    expect(await message(carol, 'hello group').count()).toBe(0);
    await send(carol, 'hi all, carol here');
    await message(alice, 'hi all, carol here').waitFor({ timeout: 15_000 });
    await message(bob, 'hi all, carol here').waitFor({ timeout: 15_000 });
    expect(await message(alice, 'hi all, carol here').getByTestId('author').textContent()).toBe(`@${handles.carol}`);
    await carol.getByTestId('members').click();
    await carol.getByTestId('member').nth(2).waitFor();
    expect(await carol.getByTestId('member').count()).toBe(3);
    expect(await carol.getByTestId('remove-member').count()).toBe(0);
    expect(await carol.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(360);
    // A group timer, "after read" mode: every member's page follows it, and a message counts down once shown.
    await alice.getByTestId('timer').selectOption('300:read');
    await waitFor(async () => (await carol.getByTestId('timer').inputValue()) === '300:read', 15_000, "carol's group timer");
    await send(alice, 'read me within five minutes');
    await message(carol, 'read me within five minutes').getByTestId('countdown').filter({ hasText: /vanishes in [45] min/ }).waitFor({ timeout: 15_000 });
    await alice.getByTestId('timer').selectOption('off');
    await waitFor(async () => (await carol.getByTestId('timer').inputValue()) === 'off', 15_000, "carol's group timer off");
    await alice.screenshot({ path: path.join(SCREENSHOTS, 'web-group.png') });
    await carol.screenshot({ path: path.join(SCREENSHOTS, 'web-group-360.png') });

    // Bob looks elsewhere: what arrives now is unread, and stays unread across a reload.
    await bob.getByTestId('this-device').click();
    await send(carol, 'for later, bob');
    await message(alice, 'for later, bob').waitFor({ timeout: 15_000 });
    await waitFor(async () => (await storedKeys(bob)).filter((k) => k.startsWith('history/')).length >= 4, 15_000, "bob's copy");
    await bob.reload();
    await bob.getByTestId('connection').filter({ hasText: 'online' }).waitFor({ timeout: 15_000 });
    expect(await bob.getByTestId('conversation').filter({ hasText: 'Trip planning' }).getByTestId('unread').textContent()).toBe('1');
    await openConversation(bob, 'Trip planning');
    await message(bob, 'for later, bob').waitFor();

    await alice.getByRole('button', { name: `Remove @${handles.bob}` }).click();
    await waitFor(async () => (await alice.getByTestId('member').count()) === 2, 15_000, 'bob removed');
    await send(alice, 'after bob left');
    await message(carol, 'after bob left').waitFor({ timeout: 15_000 });
    await bob.waitForTimeout(1000);
    expect(await message(bob, 'after bob left').count()).toBe(0);
    expect(web.pageErrors).toEqual([]);
  }, 120_000);

  let vanishingId = '';
  let bobVanishingKeys: string[] = [];

  it('sets a 30 s timer on a chat: both pages follow it and count down a vanishing message', async () => {
    await openChat(alice, `@${handles.bob}`);
    await alice.getByTestId('chat-title').filter({ hasText: `@${handles.bob}` }).waitFor();
    await alice.getByTestId('timer').selectOption('30:send');
    await alice.getByTestId('timer-note').filter({ hasText: '30 s' }).waitFor();
    await bob.getByTestId('conversation').filter({ hasText: aliceId.slice(0, 10) }).waitFor({ timeout: 15_000 });
    await openConversation(bob, aliceId.slice(0, 10));
    await waitFor(async () => (await bob.getByTestId('timer').inputValue()) === '30:send', 15_000, "bob's timer");

    await send(alice, 'this one vanishes');
    await message(bob, 'this one vanishes').waitFor({ timeout: 15_000 });
    await message(alice, 'this one vanishes').getByTestId('countdown').filter({ hasText: /vanishes in \d+ s/ }).waitFor();
    await message(bob, 'this one vanishes').getByTestId('countdown').filter({ hasText: /vanishes in \d+ s/ }).waitFor();
    vanishingId = (await message(bob, 'this one vanishes').getAttribute('data-id')) ?? '';
    bobVanishingKeys = (await storedKeys(bob)).filter((k) => k.endsWith(`/${vanishingId}`));
    expect(bobVanishingKeys).toHaveLength(1);
    expect((await storedKeys(alice)).filter((k) => k.endsWith(`/${vanishingId}`))).toHaveLength(1);
    expect(await vanishingRecords()).toBeGreaterThan(0);
    await alice.screenshot({ path: path.join(SCREENSHOTS, 'web-vanishing.png') });
    // Timers off again for the next messages.
    await alice.getByTestId('timer').selectOption('off');
  }, 60_000);

  /** Postgres rows of alice's sends that vanish within the hour (the 30 s one): send records and any copies still queued. */
  async function vanishingRecords(): Promise<number> {
    const args = [Buffer.from(decodeAccountId(aliceId)), Date.now() + 3_600_000];
    const [sends] = (await db.query(`SELECT count(*)::int AS n FROM message_sends WHERE sender_account = $1 AND expires_at > 0 AND expires_at < $2`, args)) as { n: number }[];
    const [copies] = (await db.query(`SELECT count(*)::int AS n FROM envelopes WHERE sender_account = $1 AND expires_at > 0 AND expires_at < $2`, args)) as { n: number }[];
    return sends!.n + copies!.n;
  }

  it('reply, react, edit and delete for everyone converge on both pages; typing shows live; read receipts follow the setting', async () => {
    // 360 px wide: one pane at a time.
    await carol.getByRole('button', { name: 'Back to conversations' }).click();
    await openChat(carol, `@${handles.alice}`);
    await carol.getByTestId('chat-title').filter({ hasText: `@${handles.alice}` }).waitFor();
    await send(carol, 'question for alice');
    await alice.getByTestId('conversation').filter({ hasText: 'question for alice' }).waitFor({ timeout: 15_000 });
    await openConversation(alice, 'question for alice');
    // Alice has it on screen: carol sees it read.
    await message(carol, 'question for alice').getByTestId('delivery-state').filter({ hasText: 'read' }).waitFor({ timeout: 15_000 });

    await carol.getByTestId('composer').fill('typing…');
    await alice.getByTestId('typing').waitFor({ timeout: 10_000 });
    await carol.getByTestId('composer').fill('');

    await message(alice, 'question for alice').getByTestId('action-reply').click();
    await alice.getByTestId('replying').waitFor();
    await send(alice, 'my answer');
    await message(carol, 'my answer').getByTestId('quote').filter({ hasText: 'question for alice' }).waitFor({ timeout: 15_000 });
    expect(await message(alice, 'my answer').getByTestId('quote').textContent()).toContain('question for alice');

    await message(carol, 'my answer').getByRole('button', { name: 'React 👍' }).click();
    await message(alice, 'my answer').getByTestId('reaction').filter({ hasText: '👍 1' }).waitFor({ timeout: 15_000 });
    await message(carol, 'my answer').getByTestId('reaction').filter({ hasText: '👍 1' }).waitFor();

    await message(alice, 'my answer').getByTestId('action-edit').click();
    await alice.getByTestId('composer').fill('my better answer');
    await alice.keyboard.press('Enter');
    await message(carol, 'my better answer').getByTestId('edited').waitFor({ timeout: 15_000 });
    await message(alice, 'my better answer').getByTestId('edited').waitFor();
    expect(await message(carol, 'my better answer').count()).toBe(1);
    expect(await message(carol, 'my better answer').getByTestId('reaction').textContent()).toContain('👍');

    await message(alice, 'my better answer').getByTestId('action-delete').click();
    await waitFor(async () => (await message(carol, 'my better answer').count()) === 0, 15_000, 'deleted on carol');
    expect(await message(alice, 'my better answer').count()).toBe(0);

    // Read receipts off: carol's next message gets to "delivered", never "read".
    await alice.getByTestId('this-device').click();
    await alice.getByTestId('read-receipts').uncheck();
    await alice.getByTestId('this-device').click();
    await openConversation(alice, '@' + handles.carol);
    await send(carol, 'no receipt please');
    await message(alice, 'no receipt please').waitFor({ timeout: 15_000 });
    await message(carol, 'no receipt please').getByTestId('delivery-state').filter({ hasText: 'delivered' }).waitFor({ timeout: 15_000 });
    await carol.waitForTimeout(1500);
    expect(await message(carol, 'no receipt please').getByTestId('delivery-state').textContent()).toContain('delivered');
    await carol.screenshot({ path: path.join(SCREENSHOTS, 'web-message-actions.png') });
    expect(web.pageErrors).toEqual([]);
  }, 120_000);

  it('the vanishing message disappears from both pages, from IndexedDB and from Postgres', async () => {
    for (const page of [alice, bob]) await openConversation(page, page === alice ? `@${handles.bob}` : aliceId.slice(0, 10));
    await waitFor(async () => (await message(alice, 'this one vanishes').count()) + (await message(bob, 'this one vanishes').count()) === 0, 40_000, 'the message to vanish');
    expect((await storedKeys(bob)).filter((k) => k.endsWith(`/${vanishingId}`))).toEqual([]);
    expect((await storedKeys(alice)).filter((k) => k.endsWith(`/${vanishingId}`))).toEqual([]);
    expect(bobVanishingKeys).toHaveLength(1);
    await waitFor(async () => (await vanishingRecords()) === 0, 20_000, 'the expiry worker to delete the send record');
    expect(web.pageErrors).toEqual([]);
  }, 90_000);

  it('delete for everyone while the recipient is offline: the recalled message never reaches its page', async () => {
    const context = bob.context();
    await bob.close();
    await send(alice, 'sent by mistake');
    await message(alice, 'sent by mistake').getByTestId('delivery-state').filter({ hasText: 'sent' }).waitFor({ timeout: 15_000 });
    await message(alice, 'sent by mistake').getByTestId('action-delete').click();
    await waitFor(async () => (await message(alice, 'sent by mistake').count()) === 0, 15_000, 'deleted on alice');
    // Bob's only device was offline: its queued copy was deleted on the server, not merely followed by a "del".
    await alice.getByTestId('notice').filter({ hasText: '1 copy recalled before delivery' }).waitFor();
    await send(alice, 'the one to keep');
    await message(alice, 'the one to keep').waitFor();

    bob = await context.newPage();
    await bob.goto(web.origin);
    await bob.getByTestId('connection').filter({ hasText: 'online' }).waitFor({ timeout: 15_000 });
    await openConversation(bob, aliceId.slice(0, 10));
    await message(bob, 'the one to keep').waitFor({ timeout: 15_000 });
    expect(await message(bob, 'sent by mistake').count()).toBe(0);
    expect(web.pageErrors).toEqual([]);
  }, 60_000);
});

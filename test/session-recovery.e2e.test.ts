import { TestStack, waitFor } from './support/harness';
import type { DeliveredEnvelope } from '@umbra/protocol';
import { newAccount, type E2eeDevice } from './support/devices';

describe('recovery from a broken session', () => {
  let stack: TestStack;
  const devices: E2eeDevice[] = [];
  beforeAll(async () => {
    stack = await TestStack.start();
  });
  afterAll(async () => {
    for (const d of devices) await d.client.close();
    await stack.stop();
  });

  it('answers an undecryptable message with a retry over a fresh session, and the next message gets through', async () => {
    const alice = await newAccount(stack.origin);
    const bob = await newAccount(stack.origin);
    devices.push(alice, bob);
    await alice.messenger.sendText(bob.client.identity.accountIdText, 'first');
    await waitFor(() => bob.inbox.length === 1, 10_000, 'first message');
    await bob.messenger.sendText(alice.client.identity.accountIdText, 'ack');
    await waitFor(() => alice.inbox.length === 1, 10_000, 'reply');

    // Bob loses his session state (a restored backup, a bug): Alice's next message cannot be read.
    for (const k of await bob.store.keys('session/')) await bob.store.delete(k);
    const retries: string[] = [];
    alice.messenger.on('retry', (r) => retries.push(r.from));
    await alice.messenger.sendText(bob.client.identity.accountIdText, 'lost');
    await waitFor(() => retries.length === 1, 10_000, 'a retry request');
    expect(retries).toEqual([bob.client.identity.accountIdText]);
    expect(bob.errors.length).toBeGreaterThan(0);

    await alice.messenger.sendText(bob.client.identity.accountIdText, 'after the retry');
    await waitFor(() => bob.inbox.some((m) => m.content.text === 'after the retry'), 10_000, 'the message after recovery');
    expect(bob.inbox.map((m) => m.content.text)).toEqual(['first', 'after the retry']);
  });

  it('two SDK devices agree on header encryption (§4.4): ratchet messages on the wire carry encrypted headers', async () => {
    const alice = await newAccount(stack.origin);
    const bob = await newAccount(stack.origin);
    devices.push(alice, bob);
    const wire: DeliveredEnvelope[] = [];
    alice.client.on('message', (env) => {
      wire.push(env);
    });
    await alice.messenger.sendText(bob.client.identity.accountIdText, 'hello');
    await waitFor(() => bob.inbox.length === 1, 10_000, 'first message');
    await bob.messenger.sendText(alice.client.identity.accountIdText, 'hi back');
    await bob.messenger.sendText(alice.client.identity.accountIdText, 'and again');
    await waitFor(() => alice.inbox.length === 2, 10_000, 'replies');
    const ratchet = wire.filter((e) => e.type === 2);
    expect(ratchet.length).toBeGreaterThan(0);
    // RatchetMessage = u8 version || u8 flags || …: flag bit0 is header encryption.
    for (const e of ratchet) expect(Buffer.from(e.content, 'base64url')[1]).toBe(1);
    expect(alice.inbox.map((m) => m.content.text)).toEqual(['hi back', 'and again']);
  });
});

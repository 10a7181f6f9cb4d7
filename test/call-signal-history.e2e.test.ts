import { b64uEncode, randomBytes, type Content } from '@umbra/crypto';
import { newAccount, type E2eeDevice } from './support/devices';
import { TestStack, waitFor } from './support/harness';

/** A call signal (Content{k:"call"}) as the calls code sends it: a hangup, the smallest valid one. */
function callSignal(): Content {
  return { v: 1, id: b64uEncode(randomBytes(16)), ts: Date.now(), k: 'call', call_id: '0123456789abcdef', party_id: 'party_0001', op: 'hangup', reason: 'hangup' };
}

/** Call signalling reaches the app but is control: it never changes a conversation's vanishing timer and is never kept in the history. */
describe('call signalling and the conversation (issue 16)', () => {
  let stack: TestStack;
  const devices: E2eeDevice[] = [];

  beforeAll(async () => {
    stack = await TestStack.start();
  });

  afterAll(async () => {
    for (const d of devices) await d.client.close();
    await stack?.stop();
  });

  const id = (d: E2eeDevice) => d.client.identity.accountIdText;
  const received = (d: E2eeDevice, content: Content) => waitFor(() => d.inbox.some((m) => m.content.id === content.id), 10_000, `${content.k} ${content.id}`);

  it('1:1: a call signal without a timer leaves the peer\'s timer on and neither side stores it', async () => {
    const alice = await newAccount(stack.origin);
    const bob = await newAccount(stack.origin);
    devices.push(alice, bob);
    await alice.messenger.setTimer(id(bob), { t: 300, m: 'send' });
    await waitFor(async () => (await bob.messenger.timer(id(alice)))?.t === 300, 10_000, "bob to adopt alice's timer");

    const plain = callSignal();
    await alice.messenger.sendContent(id(bob), plain);
    await received(bob, plain);
    const viaUserPath = callSignal();
    await alice.messenger.sendUserContent(id(bob), viaUserPath);
    await received(bob, viaUserPath);
    // A text after the calls: it is stored, so the history is being written.
    await alice.messenger.sendText(id(bob), 'after the call');
    await waitFor(() => bob.inbox.some((m) => m.content.text === 'after the call'), 10_000, 'the text');

    expect(await bob.messenger.timer(id(alice))).toEqual({ t: 300, m: 'send' });
    expect(await alice.messenger.timer(id(bob))).toEqual({ t: 300, m: 'send' });
    for (const [d, conv] of [[alice, id(bob)], [bob, id(alice)]] as const) {
      const kinds = (await d.messenger.history.list(conv)).map((e) => e.content.k);
      expect(kinds).toEqual(['text']);
    }
    expect(bob.errors).toEqual([]);
  });

  it('group: a call signal to the group is heard by members and stored by nobody', async () => {
    const alice = await newAccount(stack.origin);
    const bob = await newAccount(stack.origin);
    devices.push(alice, bob);
    const gid = await alice.messenger.createGroup([id(bob)], 'calls');
    await waitFor(async () => (await bob.messenger.group(gid)) !== undefined, 10_000, 'bob to learn the group');
    await alice.messenger.setGroupTimer(gid, { t: 600, m: 'send' });
    await waitFor(async () => (await bob.messenger.timer(gid))?.t === 600, 10_000, 'bob to adopt the group timer');

    const signal = callSignal();
    await alice.messenger.sendGroupContent(gid, signal);
    await received(bob, signal);

    expect(await bob.messenger.timer(gid)).toEqual({ t: 600, m: 'send' });
    expect(await alice.messenger.history.list(gid)).toEqual([]);
    expect(await bob.messenger.history.list(gid)).toEqual([]);
    expect(bob.errors).toEqual([]);
  });
});

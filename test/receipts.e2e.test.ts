import { MemoryStore, Messenger, Receipts, UmbraClient, type Receipt } from '@umbra/sdk';
import { TestStack, waitFor } from './support/harness';

interface Device {
  client: UmbraClient;
  store: MemoryStore;
  messenger: Messenger;
  receipts: Receipts;
  heard: Receipt[];
  received: string[];
}

/** Delivery and read receipts (Content{k:"rcpt"}): end-to-end encrypted, stored on the message, off means none sent. */
describe('read receipts (issue 16)', () => {
  let stack: TestStack;
  const devices: Device[] = [];

  beforeAll(async () => {
    stack = await TestStack.start();
  });

  afterAll(async () => {
    for (const d of devices) await d.client.close();
    await stack?.stop();
  });

  async function device(): Promise<Device> {
    const store = new MemoryStore();
    const client = await UmbraClient.open({ serverUrl: stack.origin, store, sendTimeoutMs: 10_000 });
    await client.createIdentity();
    await client.register();
    await client.refillPrekeys();
    const messenger = await Messenger.open(client, store);
    const receipts = await Receipts.open(messenger, store);
    const d: Device = { client, store, messenger, receipts, heard: [], received: [] };
    receipts.on('receipt', (r) => void d.heard.push(r));
    messenger.on('message', (m) => {
      if (m.content.k === 'text') d.received.push(m.content.id);
    });
    await client.connect();
    devices.push(d);
    return d;
  }

  const id = (d: Device) => d.client.identity.accountIdText;

  it('records delivered, then read, on the sender\'s message; with read receipts off only "delivered" is sent', async () => {
    const alice = await device();
    const bob = await device();
    const first = await alice.messenger.sendText(id(bob), 'receipt me');
    await waitFor(() => bob.received.length === 1, 10_000, 'bob to receive');
    const [entry] = await bob.messenger.history.list(id(alice));
    expect(await bob.receipts.sendDelivered(id(alice), [entry!.id])).toBe(1);
    await waitFor(() => alice.heard.length === 1, 10_000, 'the delivery receipt');
    expect(alice.heard[0]).toMatchObject({ conv: id(bob), from: id(bob), kind: 'delivered', ids: [entry!.id] });
    expect(await bob.receipts.sendRead(id(alice), [entry!.id])).toBe(1);
    await waitFor(() => alice.heard.length === 2, 10_000, 'the read receipt');
    const mine = await alice.messenger.findOwnSend(first.clientMessageId);
    expect(mine?.receipts?.[id(bob)]).toEqual({ delivered: expect.any(Number), read: expect.any(Number) });
    // A receipt names only messages the receiver got from that peer: alice cannot mark her own as read by bob.
    expect(await alice.receipts.sendRead(id(bob), [entry!.id])).toBe(0);

    await bob.receipts.setReadReceipts(false);
    expect(bob.receipts.readReceipts).toBe(false);
    await alice.messenger.sendText(id(bob), 'no read receipt for this');
    await waitFor(() => bob.received.length === 2, 10_000, 'bob to receive again');
    const second = (await bob.messenger.history.list(id(alice))).find((e) => e.content.text === 'no read receipt for this')!;
    expect(await bob.receipts.sendRead(id(alice), [second.id])).toBe(0);
    expect(await bob.receipts.sendDelivered(id(alice), [second.id])).toBe(1);
    await waitFor(() => alice.heard.length === 3, 10_000, 'the second delivery receipt');
    expect(alice.heard.map((r) => r.kind)).toEqual(['delivered', 'read', 'delivered']);
    // The setting is kept in the store: a restart keeps it off.
    expect((await Receipts.open(bob.messenger, bob.store)).readReceipts).toBe(false);
  });

  it('in a group, each author hears only about its own messages, from members only', async () => {
    const alice = await device();
    const bob = await device();
    const carol = await device();
    const gid = await alice.messenger.createGroup([id(bob), id(carol)], 'receipts');
    await waitFor(async () => (await carol.messenger.group(gid))?.name === 'receipts', 10_000, 'carol to learn the group');
    await alice.messenger.sendGroupText(gid, 'from alice');
    await waitFor(() => carol.received.length === 1 && bob.received.length === 1, 10_000, 'the group message');
    await bob.messenger.sendGroupText(gid, 'from bob');
    await waitFor(() => carol.received.length === 2, 10_000, 'the second group message');
    const ids = (await carol.messenger.history.list(gid)).map((e) => e.id);
    expect(await carol.receipts.sendRead(gid, ids)).toBe(2);
    await waitFor(() => alice.heard.length === 1 && bob.heard.length === 1, 10_000, 'both authors to hear');
    expect(alice.heard[0]).toMatchObject({ conv: gid, from: id(carol), kind: 'read' });
    expect(alice.heard[0]!.ids).toHaveLength(1);
    expect(bob.heard[0]!.ids).toHaveLength(1);
  });
});

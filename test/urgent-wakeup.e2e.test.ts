import { TestStack, waitFor } from './support/harness';
import { ClientPool, randomContent, toDevice, waitReceived, type TestClient } from './support/clients';
import { linkDevice, newAccount } from './support/devices';

/**
 * A send marked urgent (a call offer) wakes every recipient device that has no socket: the relay hands
 * them to its WakeupNotifier, whose default only counts umbra_wakeups_total{reason="urgent"}.
 */
describe('urgent sends wake the recipient devices that are not connected', () => {
  let stack: TestStack;
  const pool = new ClientPool(() => stack.origin);

  beforeAll(async () => {
    stack = await TestStack.start();
  });

  afterAll(async () => {
    await pool.closeAll();
    await stack.stop();
  });

  async function wakeups(): Promise<number> {
    const text = await (await fetch(`${stack.of('message-relay')[0]!.svc.url}/metrics`)).text();
    const line = /^umbra_wakeups_total\{[^}]*reason="urgent"[^}]*\} (\d+)$/m.exec(text);
    return line ? Number(line[1]) : 0;
  }

  async function online(t: TestClient): Promise<void> {
    await t.client.connect();
    await waitFor(() => t.queueEmpty > 0, 5000, 'the first drain');
  }

  it('an urgent send to a device without a socket wakes it once, and no log carries the content', async () => {
    const alice = await pool.registered();
    const bob = await pool.registered();
    await online(alice);
    const before = await wakeups();
    const content = randomContent();
    await alice.client.send({ recipients: [toDevice(bob, content)], urgent: true });
    expect(await wakeups()).toBe(before + 1);
    expect(stack.logs.text()).not.toContain(content);
  });

  it('a retried urgent send (same clientMessageId) does not wake again', async () => {
    const alice = await pool.registered();
    const bob = await pool.registered();
    await online(alice);
    const before = await wakeups();
    const clientMessageId = randomContent(16);
    await alice.client.send({ recipients: [toDevice(bob)], urgent: true, clientMessageId });
    const retry = await alice.client.send({ recipients: [toDevice(bob)], urgent: true, clientMessageId });
    expect(retry.duplicate).toBe(true);
    expect(await wakeups()).toBe(before + 1);
  });

  it('a connected device is not woken; in one send with an offline one, only the offline one is', async () => {
    const alice = await pool.registered();
    const bob = await pool.registered();
    const carol = await pool.registered();
    await online(alice);
    await online(bob);
    const before = await wakeups();
    await alice.client.send({ recipients: [toDevice(bob)], urgent: true });
    await waitReceived(bob, 1);
    expect(await wakeups()).toBe(before);

    await alice.client.send({ recipients: [toDevice(bob), toDevice(carol)], urgent: true });
    await waitReceived(bob, 2);
    expect(await wakeups()).toBe(before + 1);
  });

  it("through the SDK: the peer's devices are woken, the sender's own (sync copies) are not", async () => {
    const alice = await newAccount(stack.origin);
    const phone = await linkDevice(stack.origin, alice);
    const dana = await newAccount(stack.origin);
    const tablet = await linkDevice(stack.origin, dana);
    for (const d of [phone, dana, tablet]) await d.client.close();
    try {
      const before = await wakeups();
      await alice.messenger.sendContent(dana.client.identity.accountIdText, { v: 1, id: randomContent(16), ts: Date.now(), k: 'text', text: 'ring' }, undefined, { urgent: true });
      expect(await wakeups()).toBe(before + 2);
    } finally {
      await alice.client.close();
    }
  });

  it('a send that is not urgent wakes nobody', async () => {
    const alice = await pool.registered();
    const bob = await pool.registered();
    await online(alice);
    const before = await wakeups();
    await alice.client.send({ recipients: [toDevice(bob)] });
    await alice.client.send({ recipients: [toDevice(bob)], urgent: false });
    expect(await wakeups()).toBe(before);
  });
});

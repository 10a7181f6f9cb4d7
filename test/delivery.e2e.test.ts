import { DataSource } from 'typeorm';
import { TestStack, TEST_DATABASE_URL, waitFor } from './support/harness';
import { ClientPool, openClient, randomContent, toDevice, waitReceived, type TestClient } from './support/clients';
import { Metrics } from '@umbra/server';
import { RelayProcessor } from '../services/message-relay/src/relay/relay.processor';


describe('message delivery end to end (2 gateways, 2 relays)', () => {
  let stack: TestStack;
  let db: DataSource;
  const pool = new ClientPool(() => stack.origin);

  beforeAll(async () => {
    stack = await TestStack.start({ instances: { gateway: 2, 'message-relay': 2, 'expiry-worker': 1 } });
    db = new DataSource({ type: 'postgres', url: TEST_DATABASE_URL });
    await db.initialize();
  });

  afterAll(async () => {
    await pool.closeAll();
    await stack.stop();
    await db.destroy();
  });

  const client = () => pool.registered();

  async function queueRows(t: TestClient): Promise<number> {
    const rows: { n: number }[] = await db.query('SELECT count(*)::int AS n FROM envelopes WHERE recipient_account = $1 AND recipient_device = $2', [
      Buffer.from(t.client.identity.accountId),
      t.client.identity.device.deviceId,
    ]);
    return rows[0]!.n;
  }

  it('delivers live across gateways, acks delete the row, and the sender hears "stored" only after Postgres has it', async () => {
    const alice = await client();
    const bob = await client();
    await alice.client.connect();
    await bob.client.connect();
    const gws = stack.of('gateway').map((g) => g.svc.app.get(Metrics).connectedDevices);
    const counts = await Promise.all(gws.map(async (g) => (await g.get()).values[0]?.value ?? 0));
    expect(counts.filter((c) => c > 0).length).toBe(2); // one socket on each gateway

    const content = randomContent();
    const result = await alice.client.send({ recipients: [toDevice(bob, content)] });
    expect(result.duplicate).toBe(false);
    const stored: { n: number }[] = await db.query('SELECT count(*)::int AS n FROM message_sends WHERE client_message_id = $1', [Buffer.from(result.clientMessageId, 'base64url')]);
    expect(stored[0]!.n).toBe(1);

    await waitReceived(bob, 1);
    expect(bob.received[0]!.content).toBe(content);
    expect(bob.received[0]!.senderAccountId).toBe(alice.client.identity.accountIdText);
    expect(bob.received[0]!.senderDeviceId).toBe(alice.client.identity.device.deviceId);
    await bob.client.settle();
    await waitFor(async () => (await queueRows(bob)) === 0, 5000, 'ack to delete the row');

    const relay = stack.of('message-relay')[0]!.svc.app.get(RelayProcessor);
    await relay.sampleQueueDepths();
    const text = await (await fetch(`${stack.of('message-relay')[0]!.svc.url}/metrics`)).text();
    expect(text).toMatch(/umbra_queue_jobs\{[^}]*queue="relay"[^}]*state="waiting"[^}]*\} \d+/);
    expect(text).toMatch(/umbra_job_wait_seconds_count\{[^}]*queue="relay"[^}]*\} [1-9]/);
  });

  it('keeps messages for an offline device and drains them in order, then says the queue is empty', async () => {
    const alice = await client();
    const bob = await client();
    await alice.client.connect();
    const contents = Array.from({ length: 1200 }, () => randomContent(64));
    for (let i = 0; i < contents.length; i += 100) {
      await Promise.all(contents.slice(i, i + 100).map((c) => alice.client.send({ recipients: [toDevice(bob, c)] })));
    }
    expect(await queueRows(bob)).toBe(1200);
    await bob.client.connect();
    await waitFor(() => bob.queueEmpty === 1, 15_000, 'queue-empty');
    expect(bob.received.length).toBe(1200);
    const ids = bob.received.map((m) => Number(m.id));
    expect([...ids].sort((a, b) => a - b)).toEqual(ids);
    expect(new Set(bob.received.map((m) => m.content))).toEqual(new Set(contents));
    await bob.client.settle();
    await waitFor(async () => (await queueRows(bob)) === 0, 10_000, 'acks');
  });

  it('is idempotent on (sender device, clientMessageId): a resend is stored and delivered once', async () => {
    const alice = await client();
    const bob = await client();
    await alice.client.connect();
    await bob.client.connect();
    const request = { clientMessageId: randomContent(16), recipients: [toDevice(bob)] };
    const first = await alice.client.send(request);
    const second = await alice.client.send(request);
    expect(first.duplicate).toBe(false);
    expect(second.duplicate).toBe(true);
    expect(second.serverTimestamp).toBe(first.serverTimestamp);
    await waitReceived(bob, 1);
    await new Promise((r) => setTimeout(r, 200));
    expect(bob.received.length).toBe(1);
  });

  it('answers 409 with {missing, extra} when the device set differs from the current list', async () => {
    const alice = await client();
    const bob = await client();
    await alice.client.connect();
    const wrong = { ...toDevice(bob), deviceId: bob.client.identity.device.deviceId === 1 ? 2 : 1 };
    await expect(alice.client.send({ recipients: [wrong] })).rejects.toMatchObject({
      code: 'DEVICE_MISMATCH',
      details: {
        missing: [{ accountId: bob.client.identity.accountIdText, deviceIds: [bob.client.identity.device.deviceId] }],
        extra: [{ accountId: bob.client.identity.accountIdText, deviceIds: [wrong.deviceId] }],
      },
    });
    expect(await queueRows(bob)).toBe(0);
  });

  it('loses nothing when a gateway restarts mid-conversation', async () => {
    const alice = await client();
    const bob = await client();
    await alice.client.connect();
    await bob.client.connect();
    const sent: string[] = [];
    const sendSome = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const c = randomContent(32);
        sent.push(c);
        await alice.client.send({ recipients: [toDevice(bob, c)] });
      }
    };
    await sendSome(20);
    const [gw1] = stack.of('gateway');
    await stack.stopInstance(gw1!);
    const sending = sendSome(30);
    await stack.startInstance('gateway', 'gateway-restarted');
    await sending;
    await waitFor(() => new Set(bob.received.map((m) => m.content)).size === 50, 20_000, 'all 50 messages after the restart');
    expect(new Set(bob.received.map((m) => m.content))).toEqual(new Set(sent));
  });

  it('offers the same send, fetch and ack over REST', async () => {
    const alice = await client();
    const bob = await client();
    const content = randomContent();
    const res = await alice.client.api<{ duplicate: boolean }>('POST', '/v1/messages', { clientMessageId: randomContent(16), recipients: [toDevice(bob, content)] });
    expect(res.duplicate).toBe(false);
    const page = await bob.client.fetchMessages();
    expect(page.messages.map((m) => m.content)).toEqual([content]);
    expect(page.more).toBe(false);
    await bob.client.api('POST', '/v1/messages/ack', { ids: [page.messages[0]!.id] });
    await waitFor(async () => (await queueRows(bob)) === 0, 5000, 'REST ack');
  });

  it('keeps the outbox across a restart of the client and delivers what was queued', async () => {
    const bob = await client();
    const alice = await client();
    const aliceAgain = await openClient(stack.origin, alice.store);
    pool.track(aliceAgain);
    const request = { clientMessageId: randomContent(16), recipients: [toDevice(bob)] };
    await alice.store.set(`outbox/${request.clientMessageId}`, JSON.stringify({ request, createdAt: Date.now() }));
    await aliceAgain.client.connect();
    await bob.client.connect();
    await waitReceived(bob, 1);
    expect(await alice.store.keys('outbox/')).toEqual([]);
  });
});

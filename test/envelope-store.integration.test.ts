import { randomBytes } from 'node:crypto';
import { createDataSource, EnvelopesRepository, type DeviceAddress, type StoreSend } from '@umbra/server';
import type { DataSource } from 'typeorm';
import { TEST_DATABASE_URL, migrateTestDatabase } from './support/harness';

const DAY = 86_400_000;

function device(): DeviceAddress {
  return { accountId: randomBytes(32), deviceId: 1 + (randomBytes(4).readUInt32BE() % 1000) };
}

function send(sender: DeviceAddress, to: DeviceAddress[], over: Partial<StoreSend> = {}): StoreSend {
  return {
    sender,
    clientMessageId: randomBytes(16),
    expiresAt: 0,
    readTtlS: 0,
    recipients: to.map((r) => ({ accountId: r.accountId, deviceId: r.deviceId, type: 2, content: randomBytes(64) })),
    ...over,
  };
}

describe('envelope store (real Postgres)', () => {
  let ds: DataSource;
  let repo: EnvelopesRepository;

  beforeAll(async () => {
    await migrateTestDatabase();
    ds = createDataSource(TEST_DATABASE_URL, 4);
    await ds.initialize();
    repo = new EnvelopesRepository(ds);
  });
  afterAll(() => ds.destroy());

  it('stores a batch atomically and idempotently, results in input order', async () => {
    const a = device();
    const b = device();
    const c = device();
    const s1 = send(a, [b, c]);
    const s2 = send(a, [b]);
    const now = Date.now();
    const [r1, r2, r1again] = await repo.storeBatch([s1, s2, s1], now, DAY);
    expect(r1!.duplicate).toBe(false);
    expect(r1!.envelopes.map((e) => e.recipient.deviceId).sort()).toEqual([b.deviceId, c.deviceId].sort());
    expect(r2!.envelopes).toHaveLength(1);
    expect(r1again).toEqual({ serverTimestamp: now, duplicate: true, envelopes: [] });
    const [retry] = await repo.storeBatch([s1], now + 5000, DAY);
    expect(retry).toEqual({ serverTimestamp: now, duplicate: true, envelopes: [] });
    expect((await repo.fetchPage(b, 0, 10, now)).envelopes).toHaveLength(2);
  });

  it('lets a device read and delete only its own queue', async () => {
    const a = device();
    const b = device();
    const mallory = device();
    await repo.storeBatch([send(a, [b])], Date.now(), DAY);
    const page = await repo.fetchPage(b, 0, 10, Date.now());
    const seq = page.envelopes[0]!.seq;
    expect((await repo.fetchPage(mallory, 0, 10, Date.now())).envelopes).toEqual([]);
    expect(await repo.ack([{ recipient: mallory, seqs: [seq] }])).toBe(0);
    expect(await repo.ack([{ recipient: { accountId: b.accountId, deviceId: b.deviceId + 1 }, seqs: [seq] }])).toBe(0);
    expect(await repo.queueDepth(b)).toBe(1);
    expect(await repo.ack([{ recipient: b, seqs: [seq] }])).toBe(1);
    expect(await repo.queueDepth(b)).toBe(0);
  });

  it('never returns an envelope past its expiry or the maximum retention, and the sweep deletes it', async () => {
    const a = device();
    const b = device();
    const now = Date.now();
    await repo.storeBatch([send(a, [b], { expiresAt: now + 60_000 }), send(a, [b])], now, 30 * DAY);
    expect((await repo.fetchPage(b, 0, 10, now)).envelopes).toHaveLength(2);
    expect((await repo.fetchPage(b, 0, 10, now + 60_001)).envelopes).toHaveLength(1);
    expect((await repo.fetchPage(b, 0, 10, now + 30 * DAY + 1)).envelopes).toHaveLength(0);
    let swept = 0;
    for (;;) {
      const n = await repo.deleteOverdue(now + 30 * DAY + 1, 1000);
      swept += n.envelopes;
      if (n.envelopes < 1000) break;
    }
    expect(swept).toBeGreaterThanOrEqual(2);
    expect(await repo.queueDepth(b)).toBe(0);
  });
});

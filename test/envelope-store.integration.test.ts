import { randomBytes } from 'node:crypto';
import { createDataSource, DeviceQueueRepository, EnvelopeExpiryRepository, EnvelopeSealer, EnvelopeStoreRepository, ExpiryKeysRepository, QUEUE_RECOUNT_INTERVAL_MS, type DeviceAddress, type StoreSend } from '@umbra/server';
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
  let store: EnvelopeStoreRepository;
  let queues: DeviceQueueRepository;
  let expiry: EnvelopeExpiryRepository;
  let keys: ExpiryKeysRepository;
  const WINDOW = 60_000;

  beforeAll(async () => {
    await migrateTestDatabase();
    ds = createDataSource(TEST_DATABASE_URL, 4);
    await ds.initialize();
    keys = new ExpiryKeysRepository(ds);
    const sealer = new EnvelopeSealer(keys, WINDOW);
    store = new EnvelopeStoreRepository(ds, sealer);
    queues = new DeviceQueueRepository(ds, sealer);
    expiry = new EnvelopeExpiryRepository(ds);
  });
  afterAll(() => ds.destroy());

  it('stores a batch atomically and idempotently, results in input order', async () => {
    const a = device();
    const b = device();
    const c = device();
    const s1 = send(a, [b, c]);
    const s2 = send(a, [b]);
    const now = Date.now();
    const [r1, r2, r1again] = await store.storeBatch([s1, s2, s1], now, DAY);
    expect(r1!.duplicate).toBe(false);
    expect(r1!.envelopes.map((e) => e.recipient.deviceId).sort()).toEqual([b.deviceId, c.deviceId].sort());
    expect(r2!.envelopes).toHaveLength(1);
    expect(r1again).toEqual({ serverTimestamp: now, duplicate: true, envelopes: [] });
    const [retry] = await store.storeBatch([s1], now + 5000, DAY);
    expect(retry).toEqual({ serverTimestamp: now, duplicate: true, envelopes: [] });
    expect((await queues.fetchPage(b, '0', 10, now)).envelopes).toHaveLength(2);
  });

  it('lets a device read and delete only its own queue', async () => {
    const a = device();
    const b = device();
    const mallory = device();
    await store.storeBatch([send(a, [b])], Date.now(), DAY);
    const page = await queues.fetchPage(b, '0', 10, Date.now());
    const seq = page.envelopes[0]!.seq;
    expect((await queues.fetchPage(mallory, '0', 10, Date.now())).envelopes).toEqual([]);
    expect(await queues.ack([{ recipient: mallory, seqs: [seq] }])).toBe(0);
    expect(await queues.ack([{ recipient: { accountId: b.accountId, deviceId: b.deviceId + 1 }, seqs: [seq] }])).toBe(0);
    expect(await queues.queueDepth(b)).toBe(1);
    expect(await queues.ack([{ recipient: b, seqs: [seq] }])).toBe(1);
    expect(await queues.queueDepth(b)).toBe(0);
  });

  it("finds a retried send's copies still queued, opened, in server order, and only those", async () => {
    const a = device();
    const [b, c, d] = [device(), device(), device()];
    const now = Date.now();
    const sends = Array.from({ length: 12 }, () => send(a, [b, c]));
    const stored = await store.storeBatch(sends, now, DAY);
    const bSeqs = stored.map((r) => r.envelopes.find((e) => e.recipient.deviceId === b.deviceId && Buffer.from(e.recipient.accountId).equals(b.accountId))!.seq);
    expect(await queues.ack([{ recipient: b, seqs: [bSeqs[3]!] }])).toBe(1);
    const key = (i: number) => ({ sender: a, clientMessageId: sends[i]!.clientMessageId });
    const copies = await store.queuedCopies(
      [
        { recipient: b, message: key(10) },
        { recipient: b, message: key(3) }, // acked: gone
        { recipient: c, message: key(10) },
        { recipient: b, message: key(2) },
        { recipient: d, message: key(2) }, // never a recipient
        { recipient: c, message: { sender: b, clientMessageId: sends[2]!.clientMessageId } }, // someone else's message id
      ],
      now,
    );
    expect(copies.map((e) => [e.recipient.deviceId, e.seq])).toEqual(
      [
        [b.deviceId, bSeqs[2]!],
        [b.deviceId, bSeqs[10]!],
        [c.deviceId, stored[10]!.envelopes.find((e) => Buffer.from(e.recipient.accountId).equals(c.accountId))!.seq],
      ].sort((x, y) => Number(BigInt(x[1] as string) - BigInt(y[1] as string))),
    );
    expect(Buffer.from(copies.find((e) => e.seq === bSeqs[2])!.content)).toEqual(sends[2]!.recipients[0]!.content);
    // Past their deadline (the maximum retention here) they are not offered again.
    expect(await store.queuedCopies([{ recipient: b, message: key(2) }], now + DAY + 1)).toEqual([]);
  });

  it('never returns an envelope past its expiry or the maximum retention, and the sweep deletes it', async () => {
    const a = device();
    const b = device();
    const now = Date.now();
    await store.storeBatch([send(a, [b], { expiresAt: now + 60_000 }), send(a, [b])], now, 30 * DAY);
    expect((await queues.fetchPage(b, '0', 10, now)).envelopes).toHaveLength(2);
    expect((await queues.fetchPage(b, '0', 10, now + 60_001)).envelopes).toHaveLength(1);
    expect((await queues.fetchPage(b, '0', 10, now + 30 * DAY + 1)).envelopes).toHaveLength(0);
    let swept = 0;
    for (;;) {
      const n = await expiry.deleteOverdue(now + 30 * DAY + 1, 1000);
      swept += n.envelopes;
      if (n.envelopes < 1000) break;
    }
    expect(swept).toBeGreaterThanOrEqual(2);
    expect(await queues.queueDepth(b)).toBe(0);
  });

  it('seals contents at rest with the key of the expiry window; destroying the key makes a copied row unreadable', async () => {
    const a = device();
    const b = device();
    const now = Date.now();
    const marker = Buffer.from('plaintext-marker-0123456789');
    const s1 = send(a, [b], { expiresAt: now + 90_000 });
    s1.recipients[0]!.content = marker;
    const [r] = await store.storeBatch([s1], now, 30 * DAY);
    const seq = r!.envelopes[0]!.seq;
    expect(Buffer.from(r!.envelopes[0]!.content)).toEqual(marker);

    const [row] = (await ds.query(`SELECT content, key_window AS "keyWindow" FROM envelopes WHERE seq = $1`, [seq])) as { content: Buffer; keyWindow: number }[];
    expect(row!.content.includes(marker)).toBe(false);
    expect(row!.keyWindow).toBe(Math.ceil((now + 90_000) / WINDOW));
    expect((await queues.fetchPage(b, '0', 10, now)).envelopes.map((e) => Buffer.from(e.content))).toEqual([marker]);

    // A copy of the row taken before expiry (a backup, a replica, the WAL) …
    const copied = Buffer.from(row!.content);
    const windowEnd = row!.keyWindow * WINDOW;
    expect(await keys.get(row!.keyWindow)).toBeDefined();
    await keys.destroyEnded(windowEnd - 1, WINDOW);
    expect(await keys.get(row!.keyWindow)).toBeDefined();
    await keys.destroyEnded(windowEnd, WINDOW);
    // … is unreadable once the window has ended: the key is gone from Postgres and from every cache.
    expect(await keys.get(row!.keyWindow)).toBeUndefined();
    const fresh = new EnvelopeSealer(keys, WINDOW);
    expect(await fresh.open(row!.keyWindow, now, b, s1.clientMessageId, copied)).toBeUndefined();
    expect(await new EnvelopeSealer(keys, WINDOW).open(row!.keyWindow, windowEnd, b, s1.clientMessageId, copied)).toBeUndefined();
  });

  it('binds a sealed row to its recipient and message: a row moved to another queue does not open', async () => {
    const a = device();
    const b = device();
    const mallory = device();
    const now = Date.now();
    const s1 = send(a, [b]);
    const [r] = await store.storeBatch([s1], now, DAY);
    const seq = r!.envelopes[0]!.seq;
    await ds.query(`UPDATE envelopes SET recipient_account = $1, recipient_device = $2 WHERE seq = $3`, [mallory.accountId, mallory.deviceId, seq]);
    expect((await queues.fetchPage(mallory, '0', 10, now)).envelopes).toEqual([]);
  });

  it('expires a vanishing message: every copy and the send record, reported exactly once, with the devices it never reached', async () => {
    const a = device();
    const b1 = device();
    const b2 = { accountId: b1.accountId, deviceId: b1.deviceId + 1 };
    const c = device();
    const now = Date.now();
    const s1 = send(a, [b1, b2, c], { expiresAt: now + 5_000, attachments: ['AAAAAAAAAAAAAAAAAAAAAA'] });
    await store.storeBatch([s1], now, 30 * DAY);
    // c received its copy; b's two devices never did.
    const cPage = await queues.fetchPage(c, '0', 10, now);
    await queues.ack([{ recipient: c, seqs: cPage.envelopes.map((e) => e.seq) }]);
    const key = { sender: a, clientMessageId: s1.clientMessageId };
    expect(await expiry.expireMessages([key], now + 4_999)).toEqual({ copies: [], messages: [] });
    const [first, second] = await Promise.all([expiry.expireMessages([key], now + 5_000), expiry.expireMessages([key], now + 5_000)]);
    const outcome = first!.messages.length > 0 ? first! : second!;
    const other = first!.messages.length > 0 ? second! : first!;
    expect(other).toEqual({ copies: [], messages: [] });
    expect(outcome.copies.map((x) => x.recipient.deviceId).sort()).toEqual([b1.deviceId, b2.deviceId].sort());
    expect(outcome.messages).toHaveLength(1);
    expect(outcome.messages[0]!.recipientCounts).toEqual({ [Buffer.from(b1.accountId).toString('hex')]: 2, [Buffer.from(c.accountId).toString('hex')]: 1 });
    expect(outcome.messages[0]!.attachments).toEqual(['AAAAAAAAAAAAAAAAAAAAAA']);
    const left = (await ds.query(`SELECT count(*)::int AS n FROM envelopes WHERE client_message_id = $1`, [s1.clientMessageId])) as { n: number }[];
    const sends = (await ds.query(`SELECT count(*)::int AS n FROM message_sends WHERE client_message_id = $1`, [s1.clientMessageId])) as { n: number }[];
    expect([left[0]!.n, sends[0]!.n]).toEqual([0, 0]);
  });

  it('the sweep expires due vanishing messages from Postgres alone, and concurrent sweeps never take the same message', async () => {
    const a = device();
    const b = device();
    const now = Date.now();
    const batch = Array.from({ length: 40 }, () => send(a, [b], { expiresAt: now + 1_000 }));
    await store.storeBatch(batch, now, DAY);
    const later = now + 1_000;
    const results = await Promise.all(Array.from({ length: 4 }, () => expiry.expireDueMessages(later, 15)));
    const again = await expiry.expireDueMessages(later, 1000);
    const taken = [...results, again].flatMap((o) =>
      o.messages.filter((m) => Buffer.from(m.message.sender.accountId).equals(a.accountId)).map((m) => Buffer.from(m.message.clientMessageId).toString('hex')),
    );
    expect(taken).toHaveLength(40);
    expect(new Set(taken).size).toBe(40);
    expect(await queues.queueDepth(b)).toBe(0);
  });

  it('a read report lowers only read-mode copies of the reporting device, and reseals them under the earlier window', async () => {
    const a = device();
    const b = device();
    const other = device();
    const now = Date.now();
    const upper = now + 3600_000;
    const readMode = send(a, [b, other], { expiresAt: upper, readTtlS: 30 });
    const sendMode = send(a, [b], { expiresAt: upper });
    await store.storeBatch([readMode, sendMode], now, DAY);
    const page = await queues.fetchPage(b, '0', 10, now);
    const seqs = page.envelopes.map((e) => e.seq);
    const otherSeq = (await queues.fetchPage(other, '0', 10, now)).envelopes[0]!.seq;
    expect(await queues.lowerOnRead(other, seqs, now)).toEqual([]);
    const lowered = await queues.lowerOnRead(b, [...seqs, otherSeq], now + 1000);
    expect(lowered).toHaveLength(1);
    expect(lowered[0]!.deleteAt).toBe(now + 1000 + 30_000);
    const rows = (await ds.query(`SELECT seq, delete_at AS "deleteAt", key_window AS "keyWindow" FROM envelopes WHERE seq = ANY($1::bigint[]) ORDER BY seq`, [[...seqs, otherSeq]])) as { seq: number; deleteAt: number; keyWindow: number }[];
    const bySeq = new Map(rows.map((r) => [String(r.seq), r]));
    const readSeq = page.envelopes.find((e) => e.readTtlS > 0)!.seq;
    expect(Number(bySeq.get(readSeq)!.deleteAt)).toBe(now + 31_000);
    expect(Number(bySeq.get(readSeq)!.keyWindow)).toBe(Math.ceil((now + 31_000) / WINDOW));
    expect(Number(bySeq.get(otherSeq)!.deleteAt)).toBe(upper);
    expect((await queues.fetchPage(b, '0', 10, now + 31_000)).envelopes.map((e) => e.readTtlS)).toEqual([0]);
    // A second report never extends the deadline.
    expect(await queues.lowerOnRead(b, seqs, now + 20_000)).toEqual([]);
  });

  async function counters(d: DeviceAddress): Promise<{ kept: [number, number]; actual: [number, number] }> {
    const [kept] = (await ds.query(`SELECT envelopes, bytes FROM device_queues WHERE recipient_account = $1 AND recipient_device = $2`, [d.accountId, d.deviceId])) as { envelopes: number; bytes: number }[];
    const [actual] = (await ds.query(
      `SELECT count(*)::bigint AS n, coalesce(sum(octet_length(content)), 0)::bigint AS b FROM envelopes WHERE recipient_account = $1 AND recipient_device = $2`,
      [d.accountId, d.deviceId],
    )) as { n: number; b: number }[];
    return { kept: [Number(kept?.envelopes ?? 0), Number(kept?.bytes ?? 0)], actual: [Number(actual!.n), Number(actual!.b)] };
  }

  it('counts every insert exactly; acks, expiry and sweeps leave the counter an upper bound, never below the queue', async () => {
    const a = device();
    const b = device();
    const now = Date.now();
    await store.storeBatch([send(a, [b]), send(a, [b], { expiresAt: now + 5_000 }), send(a, [b])], now, DAY);
    await store.storeNotices([{ recipient: b, clientMessageId: randomBytes(16), type: 5, content: randomBytes(40) }], now, DAY);
    let c = await counters(b);
    expect(c.kept).toEqual(c.actual);
    expect(c.kept[0]).toBe(4);
    const inserted = c.kept;
    const page = await queues.fetchPage(b, '0', 10, now);
    await queues.ack([{ recipient: b, seqs: [page.envelopes[0]!.seq] }]);
    await expiry.expireDueMessages(now + 6_000, 100);
    c = await counters(b);
    expect(c.actual[0]).toBe(2);
    expect(c.kept).toEqual(inserted);
    await expiry.deleteOverdue(now + DAY + 1, 1000);
    c = await counters(b);
    expect(c.actual).toEqual([0, 0]);
    expect(c.kept).toEqual(inserted);
  });

  it('recounts a queue whose counter leaves no room (acks freed it), at most once per interval', async () => {
    const a = device();
    const b = device();
    const caps = { envelopes: 2, bytes: 1_000_000 };
    const t0 = Date.now();
    await store.storeBatch([send(a, [b]), send(a, [b])], t0, DAY, caps);
    const page = await queues.fetchPage(b, '0', 10, t0);
    await queues.ack([{ recipient: b, seqs: page.envelopes.map((e) => e.seq) }]);
    expect((await counters(b)).kept[0]).toBe(2);
    // The counter says full; the recount finds the queue empty and the send goes in.
    const [ok] = await store.storeBatch([send(a, [b])], t0 + 1, DAY, caps);
    expect(ok!.refused).toBeUndefined();
    let c = await counters(b);
    expect(c.kept).toEqual(c.actual);
    expect(c.kept[0]).toBe(1);
    const [second] = await store.storeBatch([send(a, [b])], t0 + 2, DAY, caps);
    expect(second!.refused).toBeUndefined();
    // Full for real now; an ack frees a place, but within the interval the counter is trusted.
    const [refused] = await store.storeBatch([send(a, [b])], t0 + 3, DAY, caps);
    expect(refused!.refused).toBe('QUEUE_FULL');
    const [oldest] = (await queues.fetchPage(b, '0', 10, t0)).envelopes;
    await queues.ack([{ recipient: b, seqs: [oldest!.seq] }]);
    const [soon] = await store.storeBatch([send(a, [b])], t0 + 3 + QUEUE_RECOUNT_INTERVAL_MS - 10, DAY, caps);
    expect(soon!.refused).toBe('QUEUE_FULL');
    const [later] = await store.storeBatch([send(a, [b])], t0 + 3 + QUEUE_RECOUNT_INTERVAL_MS + 10, DAY, caps);
    expect(later!.refused).toBeUndefined();
    c = await counters(b);
    expect(c.kept).toEqual(c.actual);
    expect(c.kept[0]).toBe(2);
  });

  it('a store without caps never refuses, whatever the counter says', async () => {
    const a = device();
    const b = device();
    await store.storeBatch([send(a, [b]), send(a, [b]), send(a, [b])], Date.now(), DAY, { envelopes: 3, bytes: 1_000_000 });
    const [notice] = await store.storeNotices([{ recipient: b, clientMessageId: randomBytes(16), type: 5, content: randomBytes(40) }], Date.now(), DAY);
    expect(notice).toBeDefined();
    const [plain] = await store.storeBatch([send(a, [b])], Date.now(), DAY);
    expect(plain!.refused).toBeUndefined();
    expect(await queues.queueDepth(b)).toBe(5);
  });

  it('envelope ids are decimal strings end to end; ids past 2^53 never throw', async () => {
    const a = device();
    const b = device();
    await store.storeBatch([send(a, [b])], Date.now(), DAY);
    const page = await queues.fetchPage(b, '0', 10, Date.now());
    expect(page.envelopes[0]!.seq).toMatch(/^[1-9][0-9]*$/);
    expect((await queues.fetchPage(b, '9223372036854775807', 10, Date.now())).envelopes).toEqual([]);
    expect(await queues.ack([{ recipient: b, seqs: ['9223372036854775807', '9007199254740993'] }])).toBe(0);
    expect(await queues.lowerOnRead(b, ['9223372036854775807'], Date.now())).toEqual([]);
    expect(await queues.queueDepth(b)).toBe(1);
  });

  it('refuses a send whole when any recipient queue is at its cap, and stores the batch\'s others', async () => {
    const a = device();
    const full = device();
    const other = device();
    const caps = { envelopes: 2, bytes: 1_000_000 };
    const now = Date.now();
    const first = send(a, [full]);
    const results = await store.storeBatch([first, send(a, [full]), send(a, [other, full]), send(a, [other])], now, DAY, caps);
    expect(results.map((r) => r.refused ?? (r.duplicate ? 'dup' : 'ok'))).toEqual(['ok', 'ok', 'QUEUE_FULL', 'ok']);
    expect(await queues.queueDepth(full)).toBe(2);
    expect(await queues.queueDepth(other)).toBe(1);
    // A retry of a stored send is a duplicate, not a refusal, even with the queue full.
    const [retry] = await store.storeBatch([first], now + 1, DAY, caps);
    expect(retry).toEqual({ serverTimestamp: now, duplicate: true, envelopes: [] });
    // Bytes: the sealed size counts (content + 28).
    const small = device();
    const [fits, over] = await store.storeBatch([send(a, [small]), send(a, [small])], now, DAY, { envelopes: 10, bytes: 64 + 28 + 10 });
    expect([fits!.refused, over!.refused]).toEqual([undefined, 'QUEUE_FULL']);
  });

  it('never overfills a queue under concurrent batches', async () => {
    const a = device();
    const b = device();
    const caps = { envelopes: 3, bytes: 1_000_000 };
    const now = Date.now();
    const results = await Promise.all(Array.from({ length: 12 }, () => store.storeBatch([send(a, [b])], now, DAY, caps)));
    expect(results.filter(([r]) => !r!.refused).length).toBe(3);
    expect(await queues.queueDepth(b)).toBe(3);
    const c = await counters(b);
    expect(c.kept).toEqual(c.actual);
  });
});

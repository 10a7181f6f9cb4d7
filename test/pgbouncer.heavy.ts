import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DataSource } from 'typeorm';
import { generateSecretKey, hexEncode, ktKeyId, pub } from '@umbra/crypto';
import { createServiceApp, type ServiceApp } from '@umbra/server';
import { downloadFile, pointerOf, sendFile } from '@umbra/sdk/node';
import { witnessService } from '../services/witness/src/witness.service';
import { ClientPool, randomContent, toDevice } from './support/clients';
import { linkDevice, newAccount, type E2eeDevice } from './support/devices';
import { TEST_DATABASE_URL, TEST_REDIS_URL, TestStack, migrateTestDatabase, waitFor } from './support/harness';
import { PgBouncer } from './support/pgbouncer';

/**
 * Issue 17, connection pooling: the whole stack (2 gateways, 2 relays, 2 key-directories,
 * media-upload, expiry-worker and a witness) with every service's DATABASE_URL pointing at a
 * private PgBouncer 1.x in transaction mode with 4 server connections, while migrations ran on the
 * direct URL (TestStack migrates TEST_DATABASE_URL). Every repository is exercised through it:
 * accounts, tokens, prekeys, envelopes (live, offline drain, acks, REST), expiry keys and vanishing
 * expiry, attachments (quota lock), the KT log (sequencer lock, STHs) and the witness state.
 * PgBouncer's admin console proves the server connections were shared. Heavy: UMBRA_HEAVY=1.
 */
const heavy = process.env.UMBRA_HEAVY === '1' ? describe : describe.skip;
const SERVER_CONNECTIONS = 4;

heavy('the stack through PgBouncer in transaction mode', () => {
  let bouncer: PgBouncer;
  let witness: ServiceApp;
  let stack: TestStack;
  let db: DataSource;
  let sampler: NodeJS.Timeout | undefined;
  const peak = { clients: 0, servers: 0, modes: new Set<string>() };
  const devices: E2eeDevice[] = [];
  const pool = new ClientPool(() => stack.origin);
  const logSk = generateSecretKey();
  const witnessSk = generateSecretKey();

  beforeAll(async () => {
    // Missing pgbouncer throws here: the suite fails, it is not skipped.
    bouncer = await PgBouncer.start({ upstreamUrl: TEST_DATABASE_URL, poolSize: SERVER_CONNECTIONS });
    await migrateTestDatabase();
    witness = await createServiceApp(witnessService, {
      env: {
        NODE_ENV: 'test',
        DATABASE_URL: bouncer.url,
        DATABASE_POOL_SIZE: '4',
        REDIS_URL: TEST_REDIS_URL,
        REDIS_PREFIX: `w${randomBytes(5).toString('hex')}`,
        PORT: '0',
        HOST: '127.0.0.1',
        LOG_LEVEL: 'warn',
        WITNESS_SIGNING_KEY: hexEncode(witnessSk),
        WITNESS_LOG_PUBLIC_KEY: hexEncode(pub(logSk)),
        INSTANCE_ID: 'witness-pgbouncer',
        WITNESS_RATE_LIMIT_PER_IP_PER_MINUTE: '100000',
      },
    });
    stack = await TestStack.start({
      instances: { gateway: 2, 'message-relay': 2, 'key-directory': 2, 'expiry-worker': 1 },
      withS3: true,
      env: {
        DATABASE_URL: bouncer.url,
        DATABASE_POOL_SIZE: '4',
        // Debian's PgBouncer (1.18) cannot keep named statements in transaction mode.
        DATABASE_PREPARED_STATEMENTS: 'false',
        KT_LOG_SIGNING_KEY: hexEncode(logSk),
        KT_WITNESSES: `${witness.url}|${hexEncode(pub(witnessSk))}`,
        KT_WITNESS_QUORUM: '1',
        KT_STH_INTERVAL_MS: '500',
        RATE_LIMIT_REGISTER_PER_IP_PER_HOUR: '1000',
        RATE_LIMIT_SEND_PER_DEVICE_PER_SECOND: '100000',
      },
    });
    db = new DataSource({ type: 'postgres', url: bouncer.url, extra: { max: 2 } });
    await db.initialize();
    const sample = async () => {
      const p = await bouncer.pool();
      peak.clients = Math.max(peak.clients, p.clients);
      peak.servers = Math.max(peak.servers, p.servers);
      peak.modes.add(p.mode);
    };
    await sample();
    sampler = setInterval(() => void sample().catch(() => undefined), 100);
  }, 120_000);

  afterAll(async () => {
    if (sampler) clearInterval(sampler);
    for (const d of devices) await d.client.close().catch(() => undefined);
    await pool.closeAll();
    await stack?.stop();
    await witness?.app.close();
    await db?.destroy();
    await bouncer?.stop();
  }, 120_000);

  const rows = async (sql: string, params: unknown[]): Promise<number> => ((await db.query(sql, params)) as { n: number }[])[0]!.n;
  const queueRows = (accountId: Uint8Array, deviceId: number) =>
    rows('SELECT count(*)::int AS n FROM envelopes WHERE recipient_account = $1 AND recipient_device = $2', [Buffer.from(accountId), deviceId]);

  it('points every service at the pooler, which runs in transaction mode with 4 server connections', () => {
    expect(new URL(stack.env.DATABASE_URL!).port).toBe(String(bouncer.port));
    expect(new URL(bouncer.url).port).not.toBe(new URL(TEST_DATABASE_URL).port || '5432');
    expect(peak.modes).toContain('transaction');
  });

  it('registers accounts with prekeys, links a device, sends E2EE 1:1 and to a group, and KT logs and cosigns it all', async () => {
    const alice = await newAccount(stack.origin);
    const bob = await newAccount(stack.origin);
    const carol = await newAccount(stack.origin);
    devices.push(alice, bob, carol);
    const alicePhone = await linkDevice(stack.origin, alice);
    devices.push(alicePhone);

    await alice.messenger.sendText(bob.client.identity.accountIdText, 'hello through the pooler');
    await waitFor(() => bob.inbox.some((m) => m.content.text === 'hello through the pooler') && alicePhone.inbox.length >= 1, 15_000, '1:1 message and its sync copy');
    await bob.messenger.sendText(alice.client.identity.accountIdText, 'reply');
    await waitFor(() => alice.inbox.some((m) => m.content.text === 'reply'), 15_000, 'the reply');

    const gid = await alice.messenger.createGroup([bob.client.identity.accountIdText, carol.client.identity.accountIdText]);
    await waitFor(async () => !!(await bob.messenger.group(gid)) && !!(await carol.messenger.group(gid)), 15_000, 'group known to the members');
    await alice.messenger.sendGroupText(gid, 'group hello');
    const inGroup = (d: E2eeDevice) => d.inbox.some((m) => m.content.gid === gid && m.content.text === 'group hello');
    await waitFor(() => inGroup(bob) && inGroup(carol) && inGroup(alicePhone), 15_000, 'the group message everywhere');

    // A handle claim and its KT lookup; the monitor replays the account's leaves.
    const handle = `pgb_${Date.now().toString(36)}`;
    await alice.client.claimHandle(handle);
    const byHandle = await bob.client.verifiedAccountByHandle(handle);
    expect(byHandle.account.accountId).toBe(alice.client.identity.accountIdText);
    expect(await alice.client.monitorKt()).toEqual([]);
    const sth = await (await fetch(`${stack.origin}/v1/kt/sth`)).json() as { sth?: string };
    expect(typeof sth.sth).toBe('string');
    const cosigned = 'SELECT count(*)::int AS n FROM witness_state WHERE witness_id = $1 AND log_id = $2 AND tree_size > 0';
    expect(await rows(cosigned, [Buffer.from(ktKeyId(pub(witnessSk))), Buffer.from(ktKeyId(pub(logSk)))])).toBe(1);

    for (const d of devices) expect(d.errors).toEqual([]);
  });

  it('keeps 600 messages for an offline device, drains them in order, and acks delete every row', async () => {
    const alice = await pool.registered();
    const bob = await pool.registered();
    await alice.client.connect();
    const contents = Array.from({ length: 600 }, () => randomContent(64));
    for (let i = 0; i < contents.length; i += 50) {
      await Promise.all(contents.slice(i, i + 50).map((c) => alice.client.send({ recipients: [toDevice(bob, c)] })));
    }
    const bobId = bob.client.identity;
    expect(await queueRows(bobId.accountId, bobId.device.deviceId)).toBe(600);
    await bob.client.connect();
    await waitFor(() => bob.queueEmpty === 1, 30_000, 'queue-empty');
    expect(bob.received.length).toBe(600);
    const ids = bob.received.map((m) => Number(m.id));
    expect([...ids].sort((a, b) => a - b)).toEqual(ids);
    expect(new Set(bob.received.map((m) => m.content))).toEqual(new Set(contents));
    await bob.client.settle();
    await waitFor(async () => (await queueRows(bobId.accountId, bobId.device.deviceId)) === 0, 15_000, 'acks');
  });

  it('is idempotent on clientMessageId and serves the same send, fetch and ack over REST', async () => {
    const alice = await pool.registered();
    const bob = await pool.registered();
    await alice.client.connect();
    const request = { clientMessageId: randomContent(16), recipients: [toDevice(bob)] };
    expect((await alice.client.send(request)).duplicate).toBe(false);
    expect((await alice.client.send(request)).duplicate).toBe(true);
    const rest = await alice.client.api<{ duplicate: boolean }>('POST', '/v1/messages', { clientMessageId: randomContent(16), recipients: [toDevice(bob)] });
    expect(rest.duplicate).toBe(false);
    const page = await bob.client.fetchMessages();
    expect(page.messages).toHaveLength(2);
    await bob.client.api('POST', '/v1/messages/ack', { ids: page.messages.map((m) => m.id) });
    const id = bob.client.identity;
    await waitFor(async () => (await queueRows(id.accountId, id.device.deviceId)) === 0, 5000, 'REST ack');
  });

  it('deletes a vanishing message for an offline device when its timer fires', async () => {
    const alice = await newAccount(stack.origin);
    const bob = await newAccount(stack.origin);
    devices.push(alice, bob);
    await bob.client.close();
    const cmid = (await alice.messenger.sendText(bob.client.identity.accountIdText, 'vanishes', { exp: { t: 5, m: 'send' } })).clientMessageId;
    const copies = () => rows(`SELECT count(*)::int AS n FROM envelopes WHERE client_message_id = $1 AND type <> 5`, [Buffer.from(cmid, 'base64url')]);
    expect(await copies()).toBeGreaterThan(0);
    const keys = await rows('SELECT count(*)::int AS n FROM expiry_keys', []);
    expect(keys).toBeGreaterThan(0);
    await waitFor(async () => (await copies()) === 0, 30_000, 'the expiry job to delete the copies');
    expect((await bob.client.fetchMessages()).messages).toEqual([]);
  });

  it('uploads an attachment (quota under a transaction lock), sends its pointer, and the recipient downloads it', async () => {
    const alice = await newAccount(stack.origin);
    const bob = await newAccount(stack.origin);
    devices.push(alice, bob);
    const dir = mkdtempSync(path.join(tmpdir(), 'umbra-pgbouncer-file-'));
    try {
      writeFileSync(path.join(dir, 'in.bin'), randomBytes(300_000));
      await sendFile(alice.messenger, bob.client.identity.accountIdText, path.join(dir, 'in.bin'));
      await waitFor(() => bob.inbox.some((m) => m.content.k === 'att'), 15_000, 'the file pointer');
      const pointer = pointerOf(bob.inbox.find((m) => m.content.k === 'att')!.content)!;
      await downloadFile(bob.client, pointer, path.join(dir, 'out.bin'));
      expect(readFileSync(path.join(dir, 'out.bin')).equals(readFileSync(path.join(dir, 'in.bin')))).toBe(true);
      expect(await rows(`SELECT count(*)::int AS n FROM attachments WHERE account_id = $1 AND state = 2`, [Buffer.from(alice.client.identity.accountId)])).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('shared the server connections: more clients than servers, never more than 4 servers, hundreds of transactions', async () => {
    const stats = await bouncer.stats();
    const now = await bouncer.pool();
    const report = { peak: { clients: peak.clients, servers: peak.servers }, now, stats };
    process.stderr.write(`pgbouncer: ${JSON.stringify(report)}\n`);
    expect(report.peak.servers).toBeLessThanOrEqual(SERVER_CONNECTIONS);
    expect(report.peak.servers).toBeGreaterThan(0);
    expect(report.peak.clients).toBeGreaterThan(2 * report.peak.servers);
    expect(stats.total_xact_count).toBeGreaterThan(500);
    expect(bouncer.log()).not.toMatch(/prepared statement|unsupported/i);
  });
});

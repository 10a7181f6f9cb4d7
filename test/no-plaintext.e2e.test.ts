import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import IORedis from 'ioredis';
import { dumpRedis, searchPostgres } from './support/dumps';
import { DataSource } from 'typeorm';
import { b64uEncode, hexEncode } from '@umbra/crypto';
import { TestStack, TEST_DATABASE_URL, TEST_REDIS_URL, waitFor } from './support/harness';
import { linkDevice, newAccount, type E2eeDevice } from './support/devices';
import { downloadFile, pointerOf, sendFile } from '@umbra/sdk/node';

describe('the servers hold nothing readable', () => {
  let stack: TestStack;
  const devices: E2eeDevice[] = [];

  beforeAll(async () => {
    stack = await TestStack.start({ instances: { gateway: 2, 'message-relay': 2 }, withS3: true });
  });
  afterAll(async () => {
    for (const d of devices) await d.client.close();
    await stack.stop();
  });

  it('delivers E2EE messages 1:1, across linked devices, in a group (with a removal rekey) and a file, and no marker, private key or file key is in Postgres, Redis, S3, the logs or the metrics', async () => {
    const alice = await newAccount(stack.origin);
    const bob = await newAccount(stack.origin);
    devices.push(alice, bob);
    const alicePhone = await linkDevice(stack.origin, alice);
    devices.push(alicePhone);

    const markers = Array.from({ length: 3 }, (_x, i) => `MARKER-${i}-${randomBytes(8).toString('hex')}`);
    await alice.messenger.sendText(bob.client.identity.accountIdText, markers[0]!);
    await waitFor(() => bob.inbox.length === 1 && alicePhone.inbox.length === 1, 10_000, 'first message and its sync copy');
    expect(bob.inbox[0]).toMatchObject({ from: alice.client.identity.accountIdText, sync: false, verified: true, content: { k: 'text', text: markers[0] } });
    expect(alicePhone.inbox[0]).toMatchObject({ sync: true, content: { text: markers[0] } });

    await bob.messenger.sendText(alice.client.identity.accountIdText, markers[1]!);
    await waitFor(() => alice.inbox.length === 1 && alicePhone.inbox.length === 2, 10_000, 'reply on both of Alice\'s devices');
    expect(alice.inbox[0]!.content.text).toBe(markers[1]);
    expect(alicePhone.inbox[1]!.content.text).toBe(markers[1]);

    await alicePhone.messenger.sendText(bob.client.identity.accountIdText, markers[2]!);
    await waitFor(() => bob.inbox.length === 2 && alice.inbox.length === 2, 10_000, 'message from the linked device');
    expect(bob.inbox[1]).toMatchObject({ fromDevice: alicePhone.client.identity.device.deviceId, verified: true, content: { text: markers[2] } });
    // A group: sender keys distributed pairwise, one SenderKeyMessage per send; removal rekeys.
    const carol = await newAccount(stack.origin);
    devices.push(carol);
    const gid = await alice.messenger.createGroup([bob.client.identity.accountIdText, carol.client.identity.accountIdText]);
    await waitFor(async () => !!(await bob.messenger.group(gid)) && !!(await carol.messenger.group(gid)) && !!(await alicePhone.messenger.group(gid)), 10_000, 'group known to all');
    const groupMarkers = [`MARKER-G0-${randomBytes(8).toString('hex')}`, `MARKER-G1-${randomBytes(8).toString('hex')}`];
    markers.push(...groupMarkers);
    await alice.messenger.sendGroupText(gid, groupMarkers[0]!);
    const inGroup = (d: E2eeDevice, text: string) => d.inbox.some((m) => m.content.gid === gid && m.content.text === text);
    await waitFor(() => inGroup(bob, groupMarkers[0]!) && inGroup(carol, groupMarkers[0]!) && inGroup(alicePhone, groupMarkers[0]!), 10_000, 'group message everywhere');

    await alice.messenger.removeMember(gid, carol.client.identity.accountIdText);
    await waitFor(async () => (await bob.messenger.group(gid))?.epoch === 1, 10_000, 'new epoch at bob');
    await alice.messenger.sendGroupText(gid, groupMarkers[1]!);
    await waitFor(() => inGroup(bob, groupMarkers[1]!) && inGroup(alicePhone, groupMarkers[1]!), 10_000, 'second group message');
    await new Promise((r) => setTimeout(r, 1000));
    expect(inGroup(carol, groupMarkers[1]!)).toBe(false);
    expect((await carol.messenger.group(gid))?.members).not.toContain(carol.client.identity.accountIdText);

    // A file: its bytes go to S3 encrypted, its key only inside an E2EE message.
    const dir = mkdtempSync(path.join(tmpdir(), 'umbra-noplain-'));
    const fileMarker = `MARKER-FILE-${randomBytes(8).toString('hex')}`;
    markers.push(fileMarker);
    writeFileSync(path.join(dir, 'in.bin'), Buffer.concat([Buffer.from(fileMarker), randomBytes(100_000), Buffer.from(fileMarker)]));
    const { pointer } = await sendFile(alice.messenger, bob.client.identity.accountIdText, path.join(dir, 'in.bin'));
    await waitFor(() => bob.inbox.some((m) => m.content.k === 'att'), 10_000, 'the file pointer');
    const got = pointerOf(bob.inbox.find((m) => m.content.k === 'att')!.content)!;
    await downloadFile(bob.client, got, path.join(dir, 'out.bin'));
    expect(readFileSync(path.join(dir, 'out.bin')).equals(readFileSync(path.join(dir, 'in.bin')))).toBe(true);

    for (const d of devices) expect(d.errors.filter((e) => !(d === carol && String(e).includes('no sender key')))).toEqual([]);
    for (const d of devices) await d.client.settle();
    await new Promise((r) => setTimeout(r, 300));

    const secrets: string[] = [];
    for (const d of devices) {
      const id = d.client.identity;
      secrets.push(hexEncode(id.device.dikSk), b64uEncode(id.device.dikSk));
      if (id.aikSk) secrets.push(hexEncode(id.aikSk), b64uEncode(id.aikSk));
    }
    secrets.push(pointer.key, Buffer.from(pointer.key, 'base64url').toString('hex'));
    const needles = [...markers, ...markers.map((m) => Buffer.from(m).toString('hex')), ...markers.map((m) => Buffer.from(m).toString('base64url')), ...secrets];

    const db = new DataSource({ type: 'postgres', url: TEST_DATABASE_URL });
    await db.initialize();
    const redis = new IORedis(TEST_REDIS_URL);
    try {
      const pg = await searchPostgres(db, needles);
      const redisText = await dumpRedis(redis);
      const metrics = await Promise.all(stack.instances.map(async (i) => (await fetch(`${i.svc.url}/metrics`)).text()));
      const logText = `${stack.logs.text()}\n${metrics.join('\n')}`;
      const s3Files = (d: string): string[] => readdirSync(d).flatMap((f) => (statSync(path.join(d, f)).isDirectory() ? s3Files(path.join(d, f)) : [path.join(d, f)]));
      const s3 = s3Files(`/tmp/umbra-test-s3-${stack.env.REDIS_PREFIX}`).map((f) => readFileSync(f));
      expect(s3.length).toBeGreaterThan(0);
      for (const n of needles) for (const bytes of s3) expect({ needle: n, inS3: bytes.includes(Buffer.from(n)) }).toEqual({ needle: n, inS3: false });
      expect(pg.chars).toBeGreaterThan(1000);
      expect(pg.found).toEqual([]);
      expect(logText.length).toBeGreaterThan(1000);
      for (const n of needles) {
        expect({ needle: n, inRedis: redisText.includes(n) }).toEqual({ needle: n, inRedis: false });
        expect({ needle: n, inLogs: logText.includes(n) }).toEqual({ needle: n, inLogs: false });
      }
    } finally {
      redis.disconnect();
      await db.destroy();
    }
  });
});

import { existsSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sendFile } from '@umbra/sdk/node';
import { UmbraApiError } from '@umbra/sdk';
import { DataSource } from 'typeorm';
import { ExpiryKeysRepository, ManualClock } from '@umbra/server';
import { startEmbeddedS3 } from '../scripts/lib/embedded-s3';
import { SweepService } from '../services/expiry-worker/src/sweep/sweep.service';
import { TestStack } from './support/harness';
import { newAccount, type E2eeDevice } from './support/devices';

const MINUTE = 60_000;
const BUCKET = 'umbra-shred';

/** Crypto-shredding never waits for the object store (issue 12 #14). */
describe('expiry keys are destroyed even while the object store is down', () => {
  const clock = new ManualClock(Date.now());
  const now = () => clock.now();
  const s3dir = mkdtempSync(path.join(tmpdir(), 'umbra-shred-s3-'));
  let s3: { endpoint: string; close: () => Promise<void> } | undefined;
  let port = 0;
  let stack: TestStack;
  const devices: E2eeDevice[] = [];

  beforeAll(async () => {
    s3 = await startEmbeddedS3({ port: 0, host: '127.0.0.1', directory: s3dir, bucket: BUCKET });
    port = Number(new URL(s3.endpoint).port);
    stack = await TestStack.start({
      instances: { 'expiry-worker': 1, 'media-upload': 1 },
      env: { S3_ENDPOINT: s3.endpoint, S3_BUCKET: BUCKET, SWEEP_INTERVAL_MS: '3600000', EXPIRY_KEY_WINDOW_S: '60', ATTACHMENT_REAP_INTERVAL_MS: '3600000' },
      overrides: { clock },
    });
  });
  afterAll(async () => {
    for (const d of devices) await d.client.close();
    await stack?.stop();
    await s3?.close();
    await rm(s3dir, { recursive: true, force: true });
  });

  const objects = (dir = s3dir): string[] => readdirSync(dir).flatMap((f) => (statSync(path.join(dir, f)).isDirectory() ? objects(path.join(dir, f)) : [path.join(dir, f)]));

  it('an S3 outage leaves the window key destroyed and the message gone; the file is reaped once S3 is back', async () => {
    const worker = stack.of('expiry-worker')[0]!.svc.app;
    const ds = worker.get(DataSource);
    const keys = worker.get(ExpiryKeysRepository);
    const alice = await newAccount(stack.origin, { now });
    const bob = await newAccount(stack.origin, { now });
    devices.push(alice, bob);
    const bobId = bob.client.identity.accountIdText;
    // Offline, so the envelope stays stored (an online device would receive and ack it at once).
    await bob.client.close();
    await alice.messenger.setTimer(bobId, { t: 60, m: 'send' });
    const file = path.join(s3dir, '..', `${path.basename(s3dir)}.bin`);
    writeFileSync(file, Buffer.alloc(70_000, 7));
    const { pointer, result } = await sendFile(alice.messenger, bobId, file, { now });
    await rm(file);
    const [row] = (await ds.query('SELECT key_window AS w FROM envelopes WHERE client_message_id = $1', [Buffer.from(result.clientMessageId, 'base64url')])) as { w: string }[];
    const window = Number(row!.w);
    expect(await keys.get(window)).toBeDefined();
    const attachmentRows = async () => ((await ds.query('SELECT count(*)::int AS n FROM attachments WHERE id = $1', [Buffer.from(pointer.oid, 'base64url')])) as { n: number }[])[0]!.n;
    const stored = () => objects().filter((f) => f.includes(pointer.oid));
    expect(stored().length).toBeGreaterThan(0);

    await s3!.close();
    s3 = undefined;
    clock.set(window * MINUTE + 1);
    const down = await worker.get(SweepService).sweep();
    expect(down.failed).toEqual(['attachments']);
    expect(down.keys).toBeGreaterThanOrEqual(1);
    expect(await keys.get(window)).toBeUndefined();
    expect(down.messages).toBeGreaterThanOrEqual(1);
    // The file is still in the store and its row waits for the next pass, but nobody can fetch it any more.
    expect(await attachmentRows()).toBe(1);
    expect(stored().length).toBeGreaterThan(0);
    const fetched = await alice.client.api('GET', `/v1/attachments/${pointer.oid}`).then(() => undefined, (e: unknown) => e);
    expect(fetched).toBeInstanceOf(UmbraApiError);
    expect((fetched as UmbraApiError).code).toBe('ATTACHMENT_NOT_FOUND');

    s3 = await startEmbeddedS3({ port, host: '127.0.0.1', directory: s3dir, bucket: BUCKET });
    const up = await worker.get(SweepService).sweep();
    expect(up.failed).toEqual([]);
    expect(up.attachments).toBe(1);
    expect(await attachmentRows()).toBe(0);
    expect(stored()).toEqual([]);
    expect(existsSync(s3dir)).toBe(true);
  });
});

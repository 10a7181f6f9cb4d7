import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { downloadFile, uploadFile, type FileSource } from '@umbra/sdk/node';
import { TestStack } from './support/harness';
import { registeredClient, type TestClient } from './support/clients';

const MiB = 1024 * 1024;

/** Upload URLs are short-lived (issue 12 #5): an upload that outlasts them fetches fresh ones. */
describe('upload URLs that lapse during an upload', () => {
  let stack: TestStack;
  let alice: TestClient;
  let dir: string;

  beforeAll(async () => {
    stack = await TestStack.start({
      withS3: true,
      env: { ATTACHMENT_UPLOAD_URL_TTL_S: '2', ATTACHMENT_MULTIPART_THRESHOLD_BYTES: String(5 * MiB), ATTACHMENT_PART_BYTES: String(5 * MiB) },
    });
    alice = await registeredClient(stack.origin);
    dir = await mkdtemp(path.join(tmpdir(), 'umbra-urls-'));
  });
  afterAll(async () => {
    await alice?.client.close();
    await stack?.stop();
    await rm(`/tmp/umbra-test-s3-${stack.env.REDIS_PREFIX}`, { recursive: true, force: true });
    await rm(dir, { recursive: true, force: true });
  });

  it('the SDK replaces expired part URLs and the upload completes', async () => {
    const bytes = randomBytes(11 * MiB);
    // Slower than the URLs live: every part after the first starts once the URLs it was given expired.
    const source: FileSource = {
      size: bytes.length,
      name: 'slow.bin',
      async *open() {
        for (let o = 0; o < bytes.length; o += MiB) {
          if (o > 0 && o % (5 * MiB) === 0) await new Promise((r) => setTimeout(r, 2500));
          yield bytes.subarray(o, Math.min(o + MiB, bytes.length));
        }
      },
    };
    const pointer = await uploadFile(alice.client, source, { concurrency: 1 });
    expect(Math.ceil(pointer.esize / (5 * MiB))).toBe(3);
    const out = path.join(dir, 'slow.out');
    await downloadFile(alice.client, pointer, out);
    expect((await readFile(out)).equals(bytes)).toBe(true);
  });
});

import { execFile, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { TestStack, waitFor } from './support/harness';

const run = promisify(execFile);
const CLI = path.join(process.cwd(), 'libs/cli/dist/umbra.js');

describe('umbra send-file / listen --download (built CLI) against the embedded S3', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await TestStack.start({ withS3: true, env: { ATTACHMENT_MULTIPART_THRESHOLD_BYTES: String(5 * 1024 * 1024), ATTACHMENT_PART_BYTES: String(5 * 1024 * 1024) } });
  });
  afterAll(async () => {
    await stack.stop();
    await rm(`/tmp/umbra-test-s3-${stack.env.REDIS_PREFIX}`, { recursive: true, force: true });
  });

  const umbra = async (home: string, ...args: string[]) => (await run(process.execPath, [CLI, '--home', home, '--server', stack.origin, ...args])).stdout.trim();

  it('Alice sends a multi-part file; Bob saves identical bytes under its name', async () => {
    const a = mkdtempSync(path.join(tmpdir(), 'umbra-fa-'));
    const b = mkdtempSync(path.join(tmpdir(), 'umbra-fb-'));
    const downloads = mkdtempSync(path.join(tmpdir(), 'umbra-fdl-'));
    await umbra(a, 'init');
    const bob = await umbra(b, 'init');
    await umbra(a, 'register');
    await umbra(b, 'register');
    const file = path.join(a, 'report final.pdf');
    const bytes = randomBytes(11 * 1024 * 1024 + 3);
    await writeFile(file, bytes);

    const listener = spawn(process.execPath, [CLI, '--home', b, '--server', stack.origin, 'listen', '--download', downloads]);
    let out = '';
    listener.stdout.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await new Promise((r) => setTimeout(r, 1500));
      expect(JSON.parse(await umbra(a, 'send-file', bob, file, '--type', 'application/pdf'))).toMatchObject({ sent: true, size: bytes.length });
      await waitFor(() => out.includes('"saved"'), 30_000, 'the saved file');
      const lines = out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines[0]).toMatchObject({ kind: 'att', verified: true });
      const saved = lines.find((l) => l.saved)!;
      expect(saved).toMatchObject({ saved: path.join(downloads, 'report final.pdf'), size: bytes.length, type: 'application/pdf' });
      expect((await readFile(saved.saved as string)).equals(bytes)).toBe(true);
    } finally {
      listener.kill('SIGTERM');
    }
  });
});

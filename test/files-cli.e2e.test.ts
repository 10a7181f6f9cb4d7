import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TestStack } from './support/harness';
import { Background, runUmbra } from './support/umbra-cli';

describe('umbra send-file / listen --download (built CLI) against the embedded S3', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await TestStack.start({ withS3: true, env: { ATTACHMENT_MULTIPART_THRESHOLD_BYTES: String(5 * 1024 * 1024), ATTACHMENT_PART_BYTES: String(5 * 1024 * 1024) } });
  });
  afterAll(async () => {
    await stack.stop();
    await rm(`/tmp/umbra-test-s3-${stack.env.REDIS_PREFIX}`, { recursive: true, force: true });
  });

  const umbra = async (home: string, ...args: string[]) => {
    const res = await runUmbra(['--home', home, '--server', stack.origin, ...args]);
    if (res.code !== 0) throw new Error(`umbra ${args.join(' ')} exited ${res.code}: ${res.stderr}`);
    return res.stdout.trim();
  };
  const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

  it('Alice sends a multi-part file; Bob saves identical bytes under its name (JSON lines with --json)', async () => {
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

    const listener = Background.umbra(['--home', b, '--server', stack.origin, '--json', 'listen', '--download', downloads]);
    try {
      await listener.until((l) => l.stderr.includes('umbra: listening as'), 'listen to connect');
      expect(JSON.parse(await umbra(a, '--json', 'send-file', bob, file, '--type', 'application/pdf'))).toMatchObject({ sent: true, size: bytes.length });
      await listener.until((l) => l.stdout.includes('"saved"'), 'the saved file', 30_000);
      const lines = listener.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines[0]).toMatchObject({ kind: 'att', verified: true });
      const saved = lines.find((l) => l.saved)!;
      expect(saved).toMatchObject({ saved: path.join(downloads, 'report final.pdf'), size: bytes.length, type: 'application/pdf' });
      expect(sha256(await readFile(saved.saved as string))).toBe(sha256(bytes));
    } finally {
      await listener.stop();
    }
  });

  it('human output: what was sent, what arrived, where it was saved', async () => {
    const a = mkdtempSync(path.join(tmpdir(), 'umbra-fha-'));
    const b = mkdtempSync(path.join(tmpdir(), 'umbra-fhb-'));
    const downloads = path.join(b, 'inbox');
    const alice = await umbra(a, 'init');
    const bob = await umbra(b, 'init');
    await umbra(a, 'register');
    await umbra(b, 'register');
    const file = path.join(a, 'clip.mp4');
    const bytes = randomBytes(300_000);
    await writeFile(file, bytes);
    const listener = Background.umbra(['--home', b, '--server', stack.origin, 'listen', '--download', downloads]);
    try {
      await listener.until((l) => l.stderr.includes('umbra: listening as'), 'listen to connect');
      expect(await umbra(a, 'send-file', bob, file)).toBe(`sent clip.mp4 (293 KiB) to ${bob}`);
      await listener.until((l) => l.stdout.includes('saved'), 'the saved file', 30_000);
      expect(listener.stdout).toMatch(new RegExp(`Z  ${alice}: sent a file: clip.mp4 \\(293 KiB\\)\\nsaved ${path.join(downloads, 'clip.mp4')} \\(293 KiB\\) from ${alice}\\n$`));
      expect(sha256(await readFile(path.join(downloads, 'clip.mp4')))).toBe(sha256(bytes));
    } finally {
      await listener.stop();
    }
  });
});

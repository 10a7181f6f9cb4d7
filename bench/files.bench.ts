/**
 * Attachment benchmark (not a test): a file of --size (default 1GiB) through the whole path —
 * encrypt only, encrypt + upload, download + decrypt — against the embedded S3, with the services
 * and the store in a child process so this process is only the client. Reports MiB/s per stage,
 * the peak RSS of the client, raw AES-256-GCM speed (node:crypto on 64 KiB blocks and
 * `openssl speed`) and the ratio. Encrypt-only runs three times: the default (SHA-256 inline on the same
 * thread unless UMBRA_HASH_WORKER=1, the file read as the SDK's `fileSource` reads it), with reused buffers
 * (the file read into one buffer, `reuseOutput`), and with SHA-256 on a worker thread. RSS per stage is the
 * process's RSS sampled every 20 ms (its value at the stage's start too); `clientMaxRssMiB` is the kernel's
 * high-water mark for this process (the client: the stack runs in a child; the AES loop runs in another).
 * The limit is measured in the same run, after the encrypt-only stages:
 * min(`openssl speed -bytes 65536 -seconds 2 -evp aes-256-gcm`, the same for sha256), and the
 * target is 0.7 of it. Prints one JSON object as its last line.
 *   npm run bench:files -- --size 256MiB [--encrypt-only]
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { createCipheriv, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rm, stat } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import * as nodeCrypto from 'node:crypto';
import * as workerThreads from 'node:worker_threads';
import { AttachmentEncryptor, defaultAeadProvider, nodeAeadProvider, type AeadProvider } from '@umbra/crypto';
import { MemoryStore, UmbraClient } from '@umbra/sdk';
import { downloadFile, uploadFile } from '@umbra/sdk/node';

const MiB = 1024 * 1024;

function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB)?$/i.exec(s);
  if (!m) throw new Error(`bad --size ${s}`);
  const unit = { b: 1, kib: 1024, mib: MiB, gib: 1024 * MiB }[(m[2] ?? 'B').toLowerCase() as 'b'];
  return Math.round(Number(m[1]) * unit);
}

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : def;
}

const log = (line: string) => process.stderr.write(`${line}\n`);

/** Child: the stack (services as their own processes, the embedded S3 in this one). */
async function serve(): Promise<void> {
  // Loaded here only: the server libraries (Nest, TypeORM, the AWS SDK) would add ~80 MiB to the client's RSS.
  const { startStack } = await import('../scripts/lib/stack.js');
  const prefix = `bf${randomBytes(4).toString('hex')}`;
  const root = path.resolve(__dirname, '..', '..');
  const stack = await startStack({
    env: {
      ...process.env,
      DATABASE_URL: process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/umbra_bench',
      REDIS_PREFIX: prefix,
      LOG_LEVEL: 'warn',
      POW_DIFFICULTY: '1',
      PUBLIC_ORIGIN: 'http://127.0.0.1:18180',
      ATTACHMENT_MAX_BYTES: String(16 * 1024 * MiB),
    },
    distDir: path.join(root, 'dist'),
    edgePort: 18180,
    host: '127.0.0.1',
    instances: { gateway: 1, 'message-relay': 1, 'expiry-worker': 0 },
    basePort: 13100,
    s3Dir: `/tmp/umbra-bench-files-s3-${prefix}`,
    s3Port: 19100,
    log,
    serviceOutput: 'inherit',
  });
  process.send?.({ origin: stack.origin });
  process.on('message', async () => {
    await stack.stop();
    await rm(`/tmp/umbra-bench-files-s3-${prefix}`, { recursive: true, force: true });
    process.exit(0);
  });
}

class RssSampler {
  peak = 0;
  startRss = 0;
  private timer: NodeJS.Timeout | undefined;
  start(): void {
    this.startRss = this.peak = process.memoryUsage.rss();
    this.timer = setInterval(() => (this.peak = Math.max(this.peak, process.memoryUsage.rss())), 20);
  }
  stop(): number {
    clearInterval(this.timer);
    this.peak = Math.max(this.peak, process.memoryUsage.rss());
    return this.peak;
  }
}

async function stage<T>(name: string, bytes: number, fn: () => Promise<T>): Promise<{ name: string; seconds: number; mibPerS: number; peakRssMiB: number; startRssMiB: number; result: T }> {
  const rss = new RssSampler();
  rss.start();
  const t0 = performance.now();
  const result = await fn();
  const seconds = (performance.now() - t0) / 1000;
  const peak = rss.stop();
  const out = { name, seconds: +seconds.toFixed(3), mibPerS: +(bytes / MiB / seconds).toFixed(1), peakRssMiB: +(peak / MiB).toFixed(1), startRssMiB: +(rss.startRss / MiB).toFixed(1), result };
  log(`${name}: ${out.mibPerS} MiB/s, ${out.seconds} s, peak RSS ${out.peakRssMiB} MiB (${out.startRssMiB} at its start)`);
  return out;
}

/** In a child process (`--node-aes`), so its 64 KiB garbage does not count in the client's RSS. */
function nodeAesGcmInChild(): number {
  return Number(execFileSync(process.execPath, [__filename, '--node-aes'], { encoding: 'utf8' }).trim());
}

function nodeAesGcm(): number {
  const key = randomBytes(32);
  const block = randomBytes(65_536);
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < 2000) {
    const c = createCipheriv('aes-256-gcm', key, randomBytes(12));
    c.update(block);
    c.final();
    c.getAuthTag();
    n++;
  }
  return (n * 65_536) / MiB / ((performance.now() - t0) / 1000);
}

/** The kernel's high-water mark of this process's RSS (ru_maxrss, KiB). */
function maxRssMiB(): number {
  return +(process.resourceUsage().maxRSS / 1024).toFixed(1);
}

/** A file as pieces of one reused buffer (the encryptor keeps nothing from a piece once it asks for the next). */
async function* readIntoOneBuffer(file: string, bytes: number): AsyncGenerator<Uint8Array> {
  const fh = await open(file);
  try {
    const buf = Buffer.allocUnsafe(bytes);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, bytes, null);
      if (bytesRead === 0) return;
      yield buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}

/** `openssl speed -bytes 65536 -seconds 2 -evp <alg>` in MiB/s (its figure is in 1000-byte units). */
function opensslSpeed(alg: 'aes-256-gcm' | 'sha256'): number | undefined {
  try {
    const outp = execFileSync('openssl', ['speed', '-bytes', '65536', '-seconds', '2', '-evp', alg], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const line = outp.split('\n').find((l) => l.trim().toLowerCase().startsWith(alg));
    const kb = Number(line?.trim().split(/\s+/).at(-1)?.replace(/k$/, ''));
    return Number.isFinite(kb) ? (kb * 1000) / MiB : undefined;
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const size = parseSize(arg('size', '1GiB'));
  const work = await import('node:fs/promises').then((fs) => fs.mkdtemp(path.join(tmpdir(), 'umbra-bench-files-')));
  const src = path.join(work, 'plain.bin');
  const dst = path.join(work, 'plain.out');
  let child: ChildProcess | undefined;
  try {
    log(`writing a ${(size / MiB).toFixed(0)} MiB test file`);
    const w = createWriteStream(src);
    const block = randomBytes(MiB);
    for (let left = size; left > 0; left -= block.length) if (!w.write(left >= block.length ? block : block.subarray(0, left))) await new Promise<void>((r) => w.once('drain', () => r()));
    w.end();
    await finished(w);

    const encryptWith =
      (provider: AeadProvider, reuse = false) =>
      async () => {
        const enc = new AttachmentEncryptor(size, { provider, reuseOutput: reuse });
        let n = 0;
        // createReadStream with 1 MiB reads is what the SDK's fileSource does (libs/sdk/src/files.ts).
        for await (const piece of enc.stream(reuse ? readIntoOneBuffer(src, MiB) : createReadStream(src, { highWaterMark: MiB }))) n += piece.length;
        return n;
      };
    // The default (SHA-256 inline unless UMBRA_HASH_WORKER=1), with reused buffers, then with the hash on a worker thread.
    const provider = defaultAeadProvider();
    const encryptOnly = await stage('encrypt-only', size, encryptWith(provider));
    const encryptReused = process.argv.includes('--encrypt-only') ? await stage('encrypt-only-reused-buffers', size, encryptWith(provider, true)) : undefined;
    // Its worker stays alive afterwards (an isolate): measured last in a full run so it does not inflate the other stages' RSS.
    const encryptOnWorker = process.argv.includes('--encrypt-only') ? await stage('encrypt-only-sha256-on-worker', size, encryptWith(nodeAeadProvider(nodeCrypto, workerThreads))) : undefined;

    const nodeMiBs = nodeAesGcmInChild();
    const opensslMiBs = opensslSpeed('aes-256-gcm');
    const opensslShaMiBs = opensslSpeed('sha256');
    const limitMiBs = opensslMiBs && opensslShaMiBs ? Math.min(opensslMiBs, opensslShaMiBs) : undefined;
    log(`64 KiB blocks: AES-256-GCM node:crypto ${nodeMiBs.toFixed(0)} MiB/s, openssl ${opensslMiBs?.toFixed(0) ?? 'n/a'} MiB/s; SHA-256 openssl ${opensslShaMiBs?.toFixed(0) ?? 'n/a'} MiB/s`);
    const limits = {
      limit: {
        opensslAesGcmMiBs: opensslMiBs ? +opensslMiBs.toFixed(0) : null,
        opensslSha256MiBs: opensslShaMiBs ? +opensslShaMiBs.toFixed(0) : null,
        minMiBs: limitMiBs ? +limitMiBs.toFixed(0) : null,
        targetMiBs: limitMiBs ? +(0.7 * limitMiBs).toFixed(0) : null,
      },
      encryptVsLimit: limitMiBs ? +(encryptOnly.mibPerS / limitMiBs).toFixed(2) : null,
      encryptReusedVsLimit: limitMiBs && encryptReused ? +(encryptReused.mibPerS / limitMiBs).toFixed(2) : null,
      encryptHashWorkerVsLimit: limitMiBs && encryptOnWorker ? +(encryptOnWorker.mibPerS / limitMiBs).toFixed(2) : null,
      defaultHashOnWorker: provider.pipelinedSha256 !== undefined,
      loadavg: loadavg().map((l) => +l.toFixed(2)),
    };
    if (process.argv.includes('--encrypt-only')) {
      const only = [encryptOnly, encryptReused!, encryptOnWorker!];
      process.stdout.write(
        `${JSON.stringify({ bench: 'files', fileBytes: size, fileMiB: +(size / MiB).toFixed(1), cpus: cpus().length, node: process.version, stages: Object.fromEntries(only.map((st) => [st.name, { mibPerS: st.mibPerS, seconds: st.seconds, peakRssMiB: st.peakRssMiB, startRssMiB: st.startRssMiB }])), ...limits, peakClientRssMiB: Math.max(...only.map((st) => st.peakRssMiB)), clientMaxRssMiB: maxRssMiB() })}\n`,
      );
      return;
    }

    child = fork(__filename, ['--serve'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const origin = await new Promise<string>((resolve, reject) => {
      child!.once('message', (m: { origin: string }) => resolve(m.origin));
      child!.once('exit', (code) => reject(new Error(`stack exited with ${code}`)));
    });
    const client = await UmbraClient.open({ serverUrl: origin, store: new MemoryStore() });
    await client.createIdentity();
    await client.register();

    const upload = await stage('encrypt+upload', size, () => uploadFile(client, src));
    const download = await stage('download+decrypt', size, () => downloadFile(client, upload.result, dst));
    if ((await stat(dst)).size !== size) throw new Error('downloaded size differs');
    await client.close();
    const onWorker = await stage('encrypt-only-sha256-on-worker', size, encryptWith(nodeAeadProvider(nodeCrypto, workerThreads)));
    if (limitMiBs) limits.encryptHashWorkerVsLimit = +(onWorker.mibPerS / limitMiBs).toFixed(2);

    const summary = {
      bench: 'files',
      fileBytes: size,
      fileMiB: +(size / MiB).toFixed(1),
      esize: upload.result.esize,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      node: process.version,
      stages: Object.fromEntries([encryptOnly, upload, download, onWorker].map((s) => [s.name, { mibPerS: s.mibPerS, seconds: s.seconds, peakRssMiB: s.peakRssMiB, startRssMiB: s.startRssMiB }])),
      ...limits,
      aesGcm64KiB: { nodeCryptoMiBs: +nodeMiBs.toFixed(0), opensslMiBs: opensslMiBs ? +opensslMiBs.toFixed(0) : null },
      encryptVsOpenssl: opensslMiBs ? +(encryptOnly.mibPerS / opensslMiBs).toFixed(2) : null,
      encryptVsNodeAes: +(encryptOnly.mibPerS / nodeMiBs).toFixed(2),
      peakClientRssMiB: Math.max(encryptOnly.peakRssMiB, upload.peakRssMiB, download.peakRssMiB),
      peakClientRssWithHashWorkerMiB: onWorker.peakRssMiB,
      clientMaxRssMiB: maxRssMiB(),
    };
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  } finally {
    if (child && child.connected) {
      child.send('stop');
      await new Promise((r) => child!.once('exit', r));
    }
    await rm(work, { recursive: true, force: true });
  }
}

if (process.argv.includes('--serve')) void serve();
else if (process.argv.includes('--node-aes')) process.stdout.write(`${nodeAesGcm()}\n`);
else
  main().catch((err: unknown) => {
    log(String(err instanceof Error ? err.stack : err));
    process.exit(1);
  });

/**
 * Web client benchmark (not a test): the size of what a browser downloads, and how long the page
 * takes to become usable on the loopback stack. Needs `npm run build:web` (dist/web) and Debian's
 * chromium. Prints one JSON object as its last line.
 *
 *   npm run bench:web -- --loads 10
 *
 * - bytes: every file of dist/web, raw and gzip (level 6, what nginx and most CDNs send).
 * - first load (cold cache, new browser context each time): navigation start → the "Create
 *   account" button is enabled (the bundle is loaded, parsed and rendered: the page is interactive).
 * - returning device: reload of a page whose device is registered → "online" (IndexedDB opened
 *   and decrypted, history restored, socket connected).
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { chromium, type Page } from 'playwright-core';
import { numericArgs } from './support/args';

interface Args {
  loads: number;
}

const log = (msg: string) => process.stderr.write(`[bench:web] ${msg}\n`);
const CHROMIUM = process.env.UMBRA_CHROMIUM ?? '/usr/bin/chromium';
const EDGE_PORT = 18280;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => (statSync(path.join(dir, f)).isDirectory() ? files(path.join(dir, f)) : [path.join(dir, f)]));
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function summary(ms: number[]): { p50: number; p90: number; min: number; max: number } {
  const s = [...ms].sort((a, b) => a - b);
  const r = (x: number) => Math.round(x);
  return { p50: r(quantile(s, 0.5)), p90: r(quantile(s, 0.9)), min: r(s[0]!), max: r(s.at(-1)!) };
}

/** Milliseconds from navigation start until `until` resolves, read from the page's own clock. */
async function timed(page: Page, navigate: () => Promise<unknown>, until: () => Promise<unknown>): Promise<number> {
  await navigate();
  await until();
  return page.evaluate(() => performance.now());
}

async function main(): Promise<void> {
  const args = numericArgs<Args>({ loads: 10 }, process.argv.slice(2));
  const root = path.resolve(__dirname, '..', '..');
  const webDir = path.join(root, 'dist', 'web');
  const all = files(webDir).map((f) => {
    const body = readFileSync(f);
    return { file: path.relative(webDir, f), raw: body.length, gzip: gzipSync(body, { level: 6 }).length };
  });
  const sum = (list: typeof all, k: 'raw' | 'gzip') => list.reduce((n, f) => n + f[k], 0);
  const js = all.filter((f) => f.file.endsWith('.js'));
  const index = readFileSync(path.join(webDir, 'index.html'), 'utf8');
  const entry = js.filter((f) => index.includes(`/${f.file}`));
  const worker = js.filter((f) => /worker/.test(f.file));

  const { startStack } = await import('../scripts/lib/stack.js');
  const prefix = `bw${randomBytes(4).toString('hex')}`;
  const stack = await startStack({
    env: {
      ...process.env,
      DATABASE_URL: process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/umbra_bench',
      REDIS_PREFIX: prefix,
      LOG_LEVEL: 'warn',
      PUBLIC_ORIGIN: `http://127.0.0.1:${EDGE_PORT}`,
      RATE_LIMIT_REGISTER_PER_IP_PER_HOUR: '1000',
    },
    distDir: path.join(root, 'dist'),
    edgePort: EDGE_PORT,
    host: '127.0.0.1',
    instances: { gateway: 1, 'message-relay': 1 },
    basePort: 13300,
    s3Dir: `/tmp/umbra-bench-web-s3-${prefix}`,
    s3Port: 19300,
    log,
    serviceOutput: 'ignore',
    webDir,
  });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  try {
    const cold: number[] = [];
    const returning: number[] = [];
    for (let i = 0; i < args.loads; i++) {
      const context = await browser.newContext();
      const page = await context.newPage();
      const create = page.getByTestId('create-account');
      cold.push(await timed(page, () => page.goto(stack.origin), () => create.and(page.locator(':enabled')).waitFor({ timeout: 30_000 })));
      if (i < Math.max(3, Math.ceil(args.loads / 2))) {
        await create.click();
        await page.getByTestId('connection').filter({ hasText: 'online' }).waitFor({ timeout: 60_000 });
        returning.push(await timed(page, () => page.reload(), () => page.getByTestId('connection').filter({ hasText: 'online' }).waitFor({ timeout: 30_000 })));
      }
      await context.close();
      log(`load ${i + 1}/${args.loads}: cold ${Math.round(cold.at(-1)!)} ms`);
    }
    const result = {
      bench: 'web',
      machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
      bytes: {
        total: { raw: sum(all, 'raw'), gzip: sum(all, 'gzip') },
        js: { raw: sum(js, 'raw'), gzip: sum(js, 'gzip') },
        entryJs: { raw: sum(entry, 'raw'), gzip: sum(entry, 'gzip') },
        powWorkerJs: { raw: sum(worker, 'raw'), gzip: sum(worker, 'gzip') },
        files: all,
      },
      firstLoadInteractiveMs: summary(cold),
      returningDeviceOnlineMs: summary(returning),
      loads: args.loads,
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await browser.close();
    await stack.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startEdge, type Edge } from '../../scripts/lib/edge';
import { s3ConnectSources, webContentSecurityPolicy } from '../../scripts/lib/web-static';
import { freePort } from './faults';
import { TestStack, type TestStackOptions } from './harness';

/** Debian's chromium; .ci/run installs it. Without it the web tests fail, they never skip. */
export const CHROMIUM = process.env.UMBRA_CHROMIUM ?? '/usr/bin/chromium';
export const SCREENSHOTS = path.join(process.cwd(), 'docs', 'screenshots');
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
];

/** Options of the web build itself. */
export interface WebBuildOptions {
  /** Builds with VITE_UMBRA_TEST_HOOKS=1: the test-only hooks of the bundle (e.g. `window.__umbraCallTest`) are live. */
  testHooks?: boolean;
}

/** Builds clients/web into a temporary directory (each test file its own, so parallel runs never share one). */
export function buildWeb(outDir: string, opts: WebBuildOptions = {}): void {
  const root = process.cwd();
  const build = spawnSync(process.execPath, [path.join(root, 'node_modules/vite/bin/vite.js'), 'build', '--config', 'clients/web/vite.config.mts', '--logLevel', 'warn'], {
    cwd: root,
    env: { ...process.env, UMBRA_WEB_OUT_DIR: outDir, ...(opts.testHooks ? { VITE_UMBRA_TEST_HOOKS: '1' } : {}) },
    encoding: 'utf8',
  });
  if (build.status !== 0) throw new Error(`vite build failed:\n${build.stdout}\n${build.stderr}`);
}

/**
 * The web client in a real Chromium against the real stack: built from clients/web, served by the
 * same edge `npm start` runs (strict CSP), on the public origin the services sign tokens for.
 */
export class WebStack {
  readonly contexts: BrowserContext[] = [];
  /** CSP reports and uncaught page errors of every page opened here; a test expects it empty. */
  readonly pageErrors: string[] = [];

  private constructor(
    readonly stack: TestStack,
    readonly edge: Edge,
    readonly origin: string,
    readonly browser: Browser,
    readonly webDir: string,
  ) {}

  static async start(opts: TestStackOptions = {}, build: WebBuildOptions = {}): Promise<WebStack> {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium; .ci/run does)`);
    const webDir = mkdtempSync(path.join(os.tmpdir(), 'umbra-web-'));
    buildWeb(webDir, build);
    const port = await freePort();
    const origin = `http://127.0.0.1:${port}`;
    const stack = await TestStack.start({ ...opts, env: { ...opts.env, PUBLIC_ORIGIN: origin } });
    // The stack's own upstream table: this edge follows instances the test stops and starts.
    const edge = await startEdge({ port, host: '127.0.0.1', upstreams: stack.upstreams, web: { dir: webDir, csp: webContentSecurityPolicy(s3ConnectSources(opts.withS3 ? stack.env : {})) } });
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    mkdirSync(SCREENSHOTS, { recursive: true });
    return new WebStack(stack, edge, origin, browser, webDir);
  }

  async newPage(width = 1280, height = 800): Promise<Page> {
    const context = await this.browser.newContext({ viewport: { width, height } });
    this.contexts.push(context);
    const page = await context.newPage();
    page.on('console', (msg) => {
      if (/Content[- ]Security[- ]Policy/i.test(msg.text())) this.pageErrors.push(msg.text());
    });
    page.on('pageerror', (err) => this.pageErrors.push(`page error: ${err.message}`));
    await page.goto(this.origin);
    return page;
  }

  async stop(): Promise<void> {
    for (const c of this.contexts) await c.close().catch(() => undefined);
    await this.browser.close().catch(() => undefined);
    await this.edge.close();
    await this.stack.stop();
    rmSync(this.webDir, { recursive: true, force: true });
  }
}

/** Creates an account on a page showing the welcome screen and waits until it is online. */
export async function createAccount(page: Page, handle?: string): Promise<void> {
  if (handle) await page.getByLabel('Handle (optional)').fill(handle);
  await page.getByTestId('create-account').click();
  await page.getByTestId('connection').filter({ hasText: 'online' }).waitFor({ timeout: 30_000 });
}

/** Opens (or creates) the 1:1 chat with `peer` ("@handle" or an account id) from the conversation list. */
export async function openChat(page: Page, peer: string): Promise<void> {
  await page.getByTestId('new-chat-input').fill(peer);
  await page.getByTestId('new-chat').click();
  await page.getByTestId('chat-title').waitFor();
}

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { waitFor } from './support/harness';
import { Background } from './support/umbra-cli';
import { newWalk, readmeSteps, sentTexts, walkReadme } from './support/readme-walk';

/**
 * The README walk with nothing stood in: "Run it" verbatim (`npm install && npm start` in the
 * clone, on the ports docs/operations.md lists), then "Talk through it" against
 * http://127.0.0.1:8080, the CLI's default. Heavy: it builds and takes the machine's ports.
 */
const heavy = process.env.UMBRA_HEAVY === '1' ? describe : describe.skip;

heavy('the README walk, verbatim, against `npm start`', () => {
  it('npm install && npm start, then every "Talk through it" command; the message arrives and the vanished one is gone', async () => {
    mkdirSync('.umbra', { recursive: true });
    const scratch = mkdtempSync(path.join(process.cwd(), '.umbra', 'readme-heavy-'));
    const steps = readmeSteps();
    for (const s of steps) for (const m of s.line.matchAll(/\bsend-file\s+\S+\s+(\S+)/g)) writeFileSync(path.join(scratch, m[1]!), randomBytes(1024 * 1024));
    const env: NodeJS.ProcessEnv = { ...process.env, npm_config_update_notifier: 'false' };
    delete env.UMBRA_SERVER;
    let servers: Background | undefined;
    const walk = newWalk();
    try {
      await walkReadme(
        steps,
        {
          cwd: scratch,
          env,
          runId: Date.now().toString(36),
          // Straight to stderr, as it happens: when a step hangs, CI shows which one.
          log: (text) => process.stderr.write(`[readme walk ${new Date().toISOString()}] ${text}\n`),
          servers: async (step) => {
            // As the README says: in the clone. Its own process group, so Ctrl-C reaches every service.
            servers = Background.shell(step.line, { cwd: process.cwd(), env });
            await waitFor(
              async () => {
                if (servers!.exitCode !== undefined) throw new Error(`npm start exited (${servers!.exitCode}): ${servers!.stderr.slice(-2000)}`);
                return fetch('http://127.0.0.1:8080/readyz').then((r) => r.ok, () => false);
              },
              180_000,
              'npm start to serve http://127.0.0.1:8080/readyz',
            );
          },
        },
        walk,
      );
      const listen = walk.records.find((r) => r.background && /\blisten\b/.test(r.command))!.background!;
      const texts = sentTexts(walk);
      await listen.until((b) => texts.every((t) => b.stdout.includes(t.text)), 'every message on listen', 60_000);
      const history = [...walk.records].reverse().find((r) => /\bhistory\b/.test(r.command))!.result!.stdout;
      for (const t of texts) expect({ text: t.text, shown: history.includes(t.text) }).toEqual({ text: t.text, shown: !t.vanishing });
    } catch (err) {
      // What the services said last is usually why a step failed.
      throw new Error(`${(err as Error).message}\n--- npm start, last output:\n${servers?.stdout.slice(-3000) ?? ''}\n${servers?.stderr.slice(-3000) ?? ''}`);
    } finally {
      for (const r of walk.records) await r.background?.stop();
      await servers?.stop();
      rmSync(scratch, { recursive: true, force: true });
    }
  }, 900_000);
});

import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { TestStack } from './support/harness';
import { newWalk, readmeSteps, sentTexts, walkReadme } from './support/readme-walk';

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of stripCode(markdown).matchAll(/^#{1,6}\s+(.+?)\s*#*$/gm)) {
    const base = m[1]!
      .replace(/`/g, '')
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .toLowerCase()
      .replace(/[^\p{L}\p{N} _-]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

function stripCode(markdown: string): string {
  return markdown.replace(/^```[\s\S]*?^```$/gm, '').replace(/`[^`\n]*`/g, '');
}

describe('links in README.md and docs/*.md (issue 13 #8)', () => {
  const files = ['README.md', ...readdirSync('docs').filter((f) => f.endsWith('.md')).map((f) => path.join('docs', f))];

  it.each(files)('every relative link and #anchor in %s resolves', (file) => {
    const text = readFileSync(file, 'utf8');
    const broken: string[] = [];
    for (const m of stripCode(text).matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
      const target = m[1]!;
      if (/^[a-z]+:/i.test(target)) continue;
      const [rel, anchor] = target.split('#') as [string, string | undefined];
      const resolved = rel ? path.join(path.dirname(file), decodeURIComponent(rel)) : file;
      if (!existsSync(resolved)) {
        broken.push(`${target}: no file ${resolved}`);
        continue;
      }
      if (anchor !== undefined && !(statSync(resolved).isFile() && resolved.endsWith('.md') && anchors(readFileSync(resolved, 'utf8')).has(anchor))) {
        broken.push(`${target}: no heading #${anchor} in ${resolved}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('README names the living spec, not the design card (no bare "PROTOCOL.md §")', () => {
    expect(readFileSync('README.md', 'utf8')).not.toMatch(/PROTOCOL\.md §/);
  });

  it('scripts and CI name README sections that exist', () => {
    const headings = new Set([...readFileSync('README.md', 'utf8').matchAll(/^#{2,6}\s+(.+)$/gm)].map((m) => m[1]!.trim()));
    const sources = ['scripts', '.ci'].flatMap((dir) => readdirSync(dir, { recursive: true, encoding: 'utf8' }).map((f) => path.join(dir, f))).filter((f) => statSync(f).isFile());
    const missing: string[] = [];
    for (const f of sources) {
      for (const m of readFileSync(f, 'utf8').matchAll(/README(?:\.md)?(?::\s*|\s+")([A-Z][\w ]*?\w)(?=["),.;]|$)/gm)) if (!headings.has(m[1]!)) missing.push(`${f}: README section "${m[1]}"`);
    }
    expect(missing).toEqual([]);
  });
});

describe('the README walk (issue 13): "Talk through it" as written, against a running stack', () => {
  let stack: TestStack;
  let scratch: string;
  beforeAll(async () => {
    stack = await TestStack.start({ withS3: true, env: { RATE_LIMIT_REGISTER_PER_IP_PER_HOUR: '1000' } });
    // Inside the clone, as a user would be: `npx umbra` finds this workspace's bin from here.
    mkdirSync('.umbra', { recursive: true });
    scratch = mkdtempSync(path.join(process.cwd(), '.umbra', 'readme-walk-'));
  });
  afterAll(async () => {
    await stack.stop();
    rmSync(scratch, { recursive: true, force: true });
    rmSync(`/tmp/umbra-test-s3-${stack.env.REDIS_PREFIX}`, { recursive: true, force: true });
  });

  it('runs every command of "Run it" and "Talk through it"; the message, the group message and the file arrive, the vanished message is gone', async () => {
    const steps = readmeSteps();
    expect(steps.filter((s) => s.kind === 'servers').map((s) => s.line)).toEqual(['npm install && npm start']);
    expect(steps.filter((s) => s.section === 'Talk through it').length).toBeGreaterThan(10);
    // The files the README sends are the user's own; make them.
    for (const s of steps) for (const m of s.line.matchAll(/\bsend-file\s+\S+\s+(\S+)/g)) writeFileSync(path.join(scratch, m[1]!), randomBytes(3 * 1024 * 1024 + 17));

    const walk = newWalk();
    try {
      await walkReadme(steps, {
        cwd: scratch,
        env: { ...process.env, UMBRA_SERVER: stack.origin, npm_config_offline: 'true', npm_config_update_notifier: 'false' },
        runId: Date.now().toString(36),
        log: process.env.UMBRA_WALK_LOG ? (t) => process.stderr.write(`${t}\n`) : undefined,
        servers: async () => undefined, // the TestStack above; test/readme.heavy.ts runs `npm start` itself
      }, walk);
      const listen = walk.records.find((r) => r.background && /\blisten\b/.test(r.command))!;
      const link = walk.records.find((r) => r.background && /\blink\s*$/.test(r.command));
      const alice = walk.accountIds.get('alice')!;
      const aliceHandle = walk.handles.get('alice_1') ?? alice;

      // Every message sent arrived at Bob's listen, as a human line; the group message names the group.
      const texts = sentTexts(walk);
      expect(texts.map((t) => t.vanishing)).toEqual(expect.arrayContaining([true, false]));
      await listen.background!.until((b) => texts.every((t) => b.stdout.includes(t.text)) && b.stdout.includes('hi all') && b.stdout.includes('saved '), 'every message and the file on listen', 60_000);
      for (const t of texts) expect(listen.background!.stdout).toMatch(new RegExp(`Z  @${aliceHandle}: ${t.text}\\n`));
      expect(listen.background!.stdout).toContain(`@${aliceHandle} in group ${walk.groupId}: hi all\n`);

      // The file: saved under its name, the same bytes.
      for (const s of walk.records) {
        const m = /\bsend-file\s+\S+\s+(\S+)/.exec(s.command);
        if (!m) continue;
        const name = path.basename(m[1]!);
        const dir = /listen --download (\S+)/.exec(listen.command)![1]!;
        const sha = (p: string) => createHash('sha256').update(readFileSync(path.join(scratch, p))).digest('hex');
        expect(listen.background!.stdout).toContain(`saved ${path.join(dir, name)} (`);
        expect(sha(path.join(dir, name))).toBe(sha(m[1]!));
      }

      // The vanished message is gone from the history the README prints last; the others are there.
      const history = [...walk.records].reverse().find((r) => /\bhistory\b/.test(r.command))!.result!.stdout;
      for (const t of texts) expect({ text: t.text, shown: history.includes(t.text) }).toEqual({ text: t.text, shown: !t.vanishing });

      // Safety numbers: 60 digits.
      const sn = walk.records.find((r) => /\bsafety-number\b/.test(r.command))!.result!.stdout;
      expect(sn.split('\n').filter((l) => /^(\d{5} )*\d{5}$/.test(l)).join(' ')).toMatch(/^(\d{5} ){11}\d{5}$/);

      // The new device showed the account it joined, then finished by itself.
      if (link) {
        await link.background!.wait();
        expect(link.background!.exitCode).toBe(0);
        expect(link.background!.stdout).toContain(`joining ${alice}\nlinked to ${alice} as device `);
      }
      // Ctrl-C (to npx and umbra, as a terminal sends it); listen said nothing but its own notes.
      await listen.background!.stop();
      expect(listen.background!.stderr.split('\n').filter((l) => l && !/^umbra: (listening as|lost the connection|reconnected)/.test(l))).toEqual([]);
    } finally {
      for (const r of walk.records) await r.background?.stop();
    }
  }, 400_000);
});

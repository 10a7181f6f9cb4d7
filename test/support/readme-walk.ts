import { readFileSync } from 'node:fs';
import { Background, runCommand, type RunResult } from './umbra-cli';

/**
 * The README's "Run it" and "Talk through it" shell blocks as steps, run in order in a scratch
 * directory. The README is read each time, so the test runs whatever it says now.
 *
 * Conventions the README keeps (so it reads naturally and the walk knows what to do):
 * - a block with a `sudo` line is machine setup (installing packages) and is not run;
 * - a line with `npm start` starts the servers: the caller provides them (a TestStack, or the
 *   command verbatim in the heavy walk);
 * - a trailing comment saying "until Ctrl-C" or "waits" marks a command that keeps running: it is
 *   started in the background, and the walk goes on once it has printed something;
 * - placeholders in angle brackets are filled from earlier output: `<group id>` from `group
 *   create`, `<link code>` from `link`, `<NAME's account id>` from `--home ./NAME init`;
 * - handles are made unique per run (`alice_1` → `alice_1_<run>`), since a server keeps them.
 */
export interface Step {
  section: string;
  /** The line as the README has it, without its comment. */
  line: string;
  comment: string;
  kind: 'servers' | 'foreground' | 'background';
}

export function readmeSteps(readme = readFileSync('README.md', 'utf8')): Step[] {
  const steps: Step[] = [];
  for (const section of ['Run it', 'Talk through it']) {
    const start = readme.indexOf(`\n## ${section}\n`);
    if (start < 0) throw new Error(`README.md has no "## ${section}" section`);
    const end = readme.indexOf('\n## ', start + 1);
    const body = readme.slice(start, end < 0 ? undefined : end);
    for (const m of body.matchAll(/^```sh\n([\s\S]*?)^```$/gm)) {
      const lines = m[1]!.split('\n').filter((l) => l.trim() !== '');
      if (lines.some((l) => /^\s*sudo\s/.test(l))) continue;
      for (const raw of lines) {
        const { line, comment } = splitComment(raw);
        if (!line) continue;
        const kind = /\bnpm start\b/.test(line) ? 'servers' : /until Ctrl-C|\bwaits\b/.test(comment) ? 'background' : 'foreground';
        steps.push({ section, line, comment, kind });
      }
    }
  }
  return steps;
}

/** `cmd "a # b"   # comment` → the command and the comment (a # outside quotes, starting a word). */
function splitComment(raw: string): { line: string; comment: string } {
  let quote: string | undefined;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(raw[i - 1]!))) return { line: raw.slice(0, i).trim(), comment: raw.slice(i + 1).trim() };
  }
  return { line: raw.trim(), comment: '' };
}

export interface WalkRecord {
  step: Step;
  /** The command as run, placeholders filled. */
  command: string;
  result?: RunResult;
  background?: Background;
}

export interface Walk {
  records: WalkRecord[];
  accountIds: Map<string, string>;
  handles: Map<string, string>;
  groupId?: string;
  linkCode?: string;
}

export interface WalkOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Starts the servers for a `npm start` step (and waits until they serve). */
  servers: (step: Step) => Promise<void>;
  /** Run once, with a unique suffix, so handles do not collide with earlier runs on the same server. */
  runId: string;
  log?: (text: string) => void;
}

export function newWalk(): Walk {
  return { records: [], accountIds: new Map(), handles: new Map() };
}

/** Runs the steps; `walk` fills as it goes, so the caller can stop background commands after a failure. */
export async function walkReadme(steps: Step[], opts: WalkOptions, walk: Walk = newWalk()): Promise<Walk> {
  for (const s of steps) {
    for (const m of s.line.matchAll(/(?:--handle|handle set)\s+@?([a-z0-9_]{3,})/g)) walk.handles.set(m[1]!, `${m[1]!}_${opts.runId}`.slice(0, 32));
  }
  const fill = (line: string): string => {
    let out = line;
    for (const [from, to] of walk.handles) out = out.replace(new RegExp(`(?<=^|[\\s@])${from}(?=$|[\\s"'])`, 'g'), to);
    out = out.replace(/<group id>/g, () => need(walk.groupId, '<group id>'));
    out = out.replace(/<link code>/g, () => need(walk.linkCode, '<link code>'));
    out = out.replace(/<(\w+)'s account id>/g, (_, name: string) => need(walk.accountIds.get(name.toLowerCase()), `<${name}'s account id>`));
    return out;
  };
  for (const step of steps) {
    const command = fill(step.line);
    const record: WalkRecord = { step, command };
    walk.records.push(record);
    opts.log?.(`$ ${command}`);
    if (step.kind === 'servers') {
      await opts.servers(step);
      continue;
    }
    if (step.kind === 'background') {
      const bg = Background.shell(command, opts);
      record.background = bg;
      if (/\blink\s*$/.test(command)) {
        await bg.until((b) => /^umbra-link:1:\S+\n/.test(b.stdout), `a link code from "${command}"`, 30_000);
        walk.linkCode = bg.stdout.split('\n')[0]!;
      } else if (/\blisten\b/.test(command)) {
        await bg.until((b) => b.stderr.includes('umbra: listening as'), `"${command}" to connect`, 30_000);
      } else {
        await bg.until((b) => b.stdout.length + b.stderr.length > 0, `output from "${command}"`, 30_000);
      }
      continue;
    }
    const result = await runCommand('bash', ['-c', command], { cwd: opts.cwd, env: opts.env, killAfterMs: 120_000 });
    record.result = result;
    opts.log?.(`  exit ${result.code} after ${result.ms} ms\n${result.stdout}${result.stderr}`);
    if (result.code !== 0) throw new Error(`README step failed (exit ${result.code}): ${command}\n${result.stdout}${result.stderr}`);
    const init = /--home \.\/(\w+) init\b/.exec(command);
    if (init) walk.accountIds.set(init[1]!.toLowerCase(), need(/um1[02-9ac-hj-np-z]{58}/.exec(result.stdout)?.[0], `an account id from "${command}"`));
    if (/\bgroup create\b/.test(command)) walk.groupId = result.stdout.trim().split('\n').pop();
  }
  return walk;
}

function need<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new Error(`the README uses ${what} before any step printed it`);
  return v;
}

/** The text argument of `send … "text"` lines, in order, and whether a vanishing timer was on when each was sent. */
export function sentTexts(walk: Walk): { text: string; vanishing: boolean }[] {
  let vanishing = false;
  const out: { text: string; vanishing: boolean }[] = [];
  for (const r of walk.records) {
    const timer = /\btimer\s+\S+\s+(\S+)/.exec(r.command);
    if (timer && !/\bgroup timer\b/.test(r.command)) vanishing = timer[1] !== 'off';
    const send = /\bumbra\b.*\ssend\s+(?!-)\S+\s+"([^"]*)"/.exec(r.command);
    if (send && !/\bgroup send\b/.test(r.command)) out.push({ text: send[1]!, vanishing });
  }
  return out;
}

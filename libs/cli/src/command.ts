import type { FlagKind, Globals } from './args';
import type { Output } from './output';
import type { Session } from './session';

export interface CommandContext {
  globals: Globals;
  /** Positional arguments after the command words, already checked against `args`. */
  args: string[];
  flags: Map<string, string | true>;
  out: Output;
  /** The device's state; opened on first use. */
  session(): Promise<Session>;
}

export interface Command {
  /** e.g. ["group", "send"] */
  words: string[];
  /** Positionals as shown in the usage: <required>, [optional], a trailing ... repeats the last. */
  args: string;
  /** Flags of this command, shown after the arguments. */
  flags?: Record<string, { kind: FlagKind; value?: string }>;
  summary: string;
  run(ctx: CommandContext): Promise<void>;
}

/** How many positionals `args` allows: <x> is required, [x] optional, ... unbounded. */
export function arity(args: string): { min: number; max: number } {
  const tokens = args.split(/\s+/).filter(Boolean);
  const min = tokens.filter((t) => t.startsWith('<')).length;
  const max = tokens.some((t) => /\.\.\.[>\]]?$/.test(t)) ? Infinity : tokens.length;
  return { min, max };
}

export function usageLine(c: Command): string {
  const flags = Object.entries(c.flags ?? {}).map(([name, f]) => (f.kind === 'boolean' ? `[--${name}]` : `[--${name} ${f.value ?? 'VALUE'}]`));
  return ['umbra', ...c.words, c.args, ...flags].filter(Boolean).join(' ');
}

export function parsePositiveInt(text: string, what: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${what} must be a whole number of seconds, not "${text}"`);
  return n;
}

/** "30s", "5m", "1h", "7d", "2w" or a number of seconds; "off" is 0. */
export function parseDuration(text: string): number {
  if (text === 'off' || text === '0') return 0;
  const m = /^(\d+)([smhdw]?)$/.exec(text);
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 }[m?.[2] ?? ''];
  const t = m && unit ? Number(m[1]) * unit : NaN;
  if (!Number.isInteger(t) || t < 1 || t > 0xffff_ffff) throw new Error(`not a duration: ${text} (use off, 30s, 5m, 1h, 7d)`);
  return t;
}

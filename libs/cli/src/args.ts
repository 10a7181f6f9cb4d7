import { homedir } from 'node:os';
import path from 'node:path';

/** A mistake in the command line itself: exit code 2 and the usage on stderr. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly usage: string,
  ) {
    super(message);
  }
}

export type FlagKind = 'string' | 'boolean';

export interface Globals {
  home: string;
  server: string;
  timeoutMs: number;
  json: boolean;
  /** A pinned key-transparency config file (JSON as GET /v1/kt/config serves it); none: trust on first use. */
  ktConfig?: string;
}

export interface Parsed {
  /** The command words as written, e.g. ["group", "send"]; empty for a bare `umbra`. */
  words: string[];
  positionals: string[];
  flags: Map<string, string | true>;
  help: boolean;
  globals: Globals;
}

/** Flags every command accepts. */
export const GLOBAL_FLAGS: Record<string, FlagKind> = { home: 'string', server: 'string', timeout: 'string', json: 'boolean', help: 'boolean', 'kt-config': 'string' };

export const DEFAULT_SERVER = 'http://127.0.0.1:8080';
export const DEFAULT_TIMEOUT_SECONDS = 10;

/**
 * Splits argv into flags and positionals. `--name value` and `--name=value` for string flags,
 * `--name` alone for boolean ones, `--` ends the flags; a flag not in `known` is an error, and so is
 * `-x` (no short options but -h). An argument that itself begins with "--" goes after `--`.
 */
export function splitArgv(argv: string[], known: (name: string) => FlagKind | undefined, usage: string): { positionals: string[]; flags: Map<string, string | true> } {
  const flags = new Map<string, string | true>();
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (a === '-h') {
      flags.set('help', true);
      continue;
    }
    if (!a.startsWith('--') || a.length === 2) {
      // Only a dash and one letter is an (unknown) short option: a longer word that starts with a dash is
      // an argument, such as a message id (base64url ids begin with "-" one time in 64).
      if (a.length === 2 && a.startsWith('-') && !/^-\d/.test(a)) throw new UsageError(`unknown option ${a}`, usage);
      positionals.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
    const kind = known(name);
    if (!kind) throw new UsageError(`unknown option --${name}`, usage);
    if (kind === 'boolean') {
      if (eq >= 0) throw new UsageError(`--${name} takes no value`, usage);
      flags.set(name, true);
      continue;
    }
    const value = eq >= 0 ? a.slice(eq + 1) : argv[++i];
    if (value === undefined || value === '' || (eq < 0 && value.startsWith('--'))) throw new UsageError(`--${name} needs a value`, usage);
    flags.set(name, value);
  }
  return { positionals, flags };
}

export function globalsOf(flags: Map<string, string | true>, env: NodeJS.ProcessEnv, usage: string): Globals {
  const str = (k: string) => {
    const v = flags.get(k);
    return typeof v === 'string' ? v : undefined;
  };
  const server = str('server') ?? env.UMBRA_SERVER ?? DEFAULT_SERVER;
  try {
    const u = new URL(server);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error();
  } catch {
    throw new UsageError(`--server must be an http:// or https:// URL, not "${server}"`, usage);
  }
  const timeoutText = str('timeout') ?? String(DEFAULT_TIMEOUT_SECONDS);
  const timeout = Number(timeoutText);
  if (!Number.isFinite(timeout) || timeout <= 0 || timeout > 3600) throw new UsageError(`--timeout is a number of seconds (0 < t ≤ 3600), not "${timeoutText}"`, usage);
  const ktConfig = str('kt-config') ?? (env.UMBRA_KT_CONFIG || undefined);
  return {
    ...(ktConfig ? { ktConfig } : {}),
    home: str('home') ?? env.UMBRA_HOME ?? path.join(homedir(), '.umbra'),
    server: server.replace(/\/+$/, ''),
    timeoutMs: Math.round(timeout * 1000),
    json: flags.has('json'),
  };
}

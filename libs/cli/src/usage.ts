import { DEFAULT_SERVER, DEFAULT_TIMEOUT_SECONDS } from './args';
import { usageLine, type Command } from './command';

const GLOBAL_HELP = `options for every command:
  --home DIR      where this device keeps its state (env UMBRA_HOME, default ~/.umbra)
  --server URL    the server's public origin (env UMBRA_SERVER, default ${DEFAULT_SERVER})
  --timeout SECS  give up when the server does not answer in time (default ${DEFAULT_TIMEOUT_SECONDS})
  --json          one JSON object per line on stdout, for scripts (errors as JSON on stderr)
  --kt-config FILE  the key-transparency log key and witnesses to trust (env UMBRA_KT_CONFIG;
                  npm start writes .umbra/kt.json); without it the server's own config is
                  trusted on first use, with a warning
  --help          this text; umbra <command> --help for one command

exit status: 0 done, 1 failed (the reason is on stderr), 2 the command line was wrong`;

export function fullUsage(commands: Command[]): string {
  const lines = commands.map((c) => {
    const head = `  ${usageLine(c).slice('umbra '.length)}`;
    const summary = c.summary.split('\n').map((l) => `      ${l}`);
    return [head, ...summary].join('\n');
  });
  return `umbra — the reference Umbra client (end-to-end encrypted; the server sees only ciphertext)

usage: umbra [options] <command> [args]

commands:
${lines.join('\n')}

${GLOBAL_HELP}`;
}

/** For a wrong command line: short enough to see the error above it. */
export function briefUsage(commands: Command[]): string {
  const names = [...new Set(commands.map((c) => c.words.join(' ')))];
  return `usage: umbra [options] <command> [args]\ncommands: ${names.join(', ')}\n(umbra --help explains each)`;
}

export function commandUsage(c: Command): string {
  return `usage: ${usageLine(c)}\n  ${c.summary.replace(/\n/g, '\n  ')}\n\n(umbra --help lists every command and the options they all take)`;
}

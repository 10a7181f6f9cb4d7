#!/usr/bin/env node
import { GLOBAL_FLAGS, UsageError, globalsOf, splitArgv, type FlagKind } from './args';
import { arity, type Command } from './command';
import { COMMANDS } from './commands';
import { Output } from './output';
import type { Session } from './session';
import { briefUsage, commandUsage, fullUsage } from './usage';

const USAGE = fullUsage(COMMANDS);
const BRIEF = briefUsage(COMMANDS);

/** Every flag any command knows, so values are not mistaken for command words. */
function anyFlag(name: string): FlagKind | undefined {
  if (GLOBAL_FLAGS[name]) return GLOBAL_FLAGS[name];
  for (const c of COMMANDS) if (c.flags?.[name]) return c.flags[name].kind;
  return undefined;
}

function findCommand(positionals: string[]): { command: Command; rest: string[] } {
  const [first, second] = positionals;
  if (first === undefined) throw new UsageError('no command given', BRIEF);
  const two = COMMANDS.find((c) => c.words.length === 2 && c.words[0] === first && c.words[1] === second);
  if (two) return { command: two, rest: positionals.slice(2) };
  const one = COMMANDS.find((c) => c.words.length === 1 && c.words[0] === first);
  if (one) return { command: one, rest: positionals.slice(1) };
  const family = COMMANDS.filter((c) => c.words.length === 2 && c.words[0] === first);
  if (family.length > 0) {
    const usage = family.map((c) => commandUsage(c).split('\n')[0]).join('\n');
    throw new UsageError(second === undefined ? `umbra ${first} needs one of: ${family.map((c) => c.words[1]).join(', ')}` : `unknown command "umbra ${first} ${second}"`, usage);
  }
  throw new UsageError(`unknown command "${first}"`, BRIEF);
}

async function main(argv: string[]): Promise<number> {
  const { positionals, flags } = splitArgv(argv, anyFlag, BRIEF);
  const json = flags.has('json');
  if (positionals[0] === 'help') {
    const topic = positionals.slice(1);
    process.stdout.write(`${topic.length > 0 ? commandUsage(findCommand(topic).command) : USAGE}\n`);
    return 0;
  }
  if (flags.has('help')) {
    process.stdout.write(`${positionals.length > 0 ? commandUsage(findCommand(positionals).command) : USAGE}\n`);
    return 0;
  }
  const { command, rest } = findCommand(positionals);
  const usage = commandUsage(command);
  for (const name of flags.keys()) if (!GLOBAL_FLAGS[name] && !command.flags?.[name]) throw new UsageError(`umbra ${command.words.join(' ')} has no option --${name}`, usage);
  const { min, max } = arity(command.args);
  if (rest.length < min) throw new UsageError(`missing argument${min - rest.length > 1 ? 's' : ''}`, usage);
  if (rest.length > max) throw new UsageError(`unexpected argument "${rest[max]}"${command.args.includes('text...') ? '' : ' (quote text with spaces)'}`, usage);
  const globals = globalsOf(flags, process.env, usage);
  const out = new Output(json);
  let session: Promise<Session> | undefined;
  try {
    // The SDK loads with the session: usage errors and --help do without it.
    const open = async () => (await import('./session.js')).Session.open(globals);
    await command.run({ globals, args: rest, flags, out, session: () => (session ??= open()) });
  } finally {
    if (session) await (await session).close();
  }
  return typeof process.exitCode === 'number' ? process.exitCode : 0;
}

const argv = process.argv.slice(2);
main(argv).then(
  (code) => process.exit(code),
  async (err: unknown) => {
    const json = argv.includes('--json');
    if (err instanceof UsageError) {
      process.stderr.write(json ? `${JSON.stringify({ error: { code: 'USAGE', message: err.message } })}\n` : `umbra: ${err.message}\n\n${err.usage}\n`);
      process.exit(2);
    }
    const { describeError, formatError } = await import('./errors.js');
    process.stderr.write(json ? `${JSON.stringify({ error: describeError(err) })}\n` : `umbra: ${formatError(err)}\n`);
    process.exit(1);
  },
);

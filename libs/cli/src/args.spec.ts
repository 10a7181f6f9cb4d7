import { UsageError, splitArgv, type FlagKind } from './args';

const known = (name: string): FlagKind | undefined => ({ json: 'boolean', server: 'string' })[name] as FlagKind | undefined;
const split = (argv: string[]) => splitArgv(argv, known, 'usage');

describe('splitArgv', () => {
  it('takes an argument that starts with a dash, such as a base64url message id, as a positional', () => {
    expect(split(['edit', 'um1peer', '-Yk3bq0s2nX1yZ5a9Qw8Rt', 'new', 'text']).positionals).toEqual(['edit', 'um1peer', '-Yk3bq0s2nX1yZ5a9Qw8Rt', 'new', 'text']);
    expect(split(['delete', '-5x']).positionals).toEqual(['delete', '-5x']);
  });

  it('still refuses an unknown short option and an unknown long one; "--" ends the flags', () => {
    expect(() => split(['-x'])).toThrow(UsageError);
    expect(() => split(['edit', '--bogus'])).toThrow('unknown option --bogus');
    const after = split(['--json', 'edit', '--', '--Yk3bq0s2nX1yZ5a9Qw8R']);
    expect(after.positionals).toEqual(['edit', '--Yk3bq0s2nX1yZ5a9Qw8R']);
    expect(after.flags.get('json')).toBe(true);
  });
});

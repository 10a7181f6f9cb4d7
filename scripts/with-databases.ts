import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { ensureDatabases, MissingBinaryError } from './lib/local-databases';

/**
 * `node dist/scripts/with-databases.js [--private] -- <command> [args…]` (used by `npm test`): runs
 * the command with TEST_DATABASE_URL and TEST_REDIS_URL (read by test/support/harness.ts) set to a
 * Postgres and Redis that answer: the configured ones (TEST_DATABASE_URL / TEST_REDIS_URL, default
 * 127.0.0.1:5432 / 6379), else private ones started for this run under .umbra/ and removed after.
 * `--private` starts private ones even when the configured ones answer.
 */
async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const sep = args.indexOf('--');
  const flags = sep >= 0 ? args.slice(0, sep) : [];
  const command = sep >= 0 ? args.slice(sep + 1) : [];
  const unknown = flags.filter((f) => f !== '--private');
  if (command.length === 0 || unknown.length > 0) {
    process.stderr.write(`usage: with-databases [--private] -- <command> [args…]${unknown.length ? ` (unknown: ${unknown.join(' ')})` : ''}\n`);
    return 2;
  }
  const root = path.resolve(__dirname, '..', '..');
  mkdirSync(path.join(root, '.umbra'), { recursive: true });
  const dir = mkdtempSync(path.join(root, '.umbra', 'test-databases-'));
  const log = (line: string) => process.stderr.write(`[databases] ${line}\n`);
  const databases = await ensureDatabases({
    databaseUrl: process.env.TEST_DATABASE_URL,
    redisUrl: process.env.TEST_REDIS_URL,
    database: 'umbra_test',
    dir,
    postgresArgs: ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'],
    forcePrivate: flags.includes('--private'),
    log,
  });
  try {
    const child = spawn(command[0]!, command.slice(1), {
      stdio: 'inherit',
      env: { ...process.env, TEST_DATABASE_URL: databases.databaseUrl, TEST_REDIS_URL: databases.redisUrl },
    });
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    return await new Promise<number>((resolve) => {
      child.once('error', (err) => {
        log(`cannot run ${command[0]}: ${err.message}`);
        resolve(127);
      });
      child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    });
  } finally {
    if (databases.started.length) log(`stopping the private ${databases.started.join(' and ')}`);
    await databases.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`error: ${err instanceof MissingBinaryError ? err.message : err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);

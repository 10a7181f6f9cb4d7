import { DataSource } from 'typeorm';
import pg from 'pg';
import { migrationsFor, type MigrationOptions } from './migrations';

// int8 columns (device ids, ms timestamps, sequence numbers) all fit in 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v: string) => Number(v));

export function createDataSource(url: string, poolSize: number, migrationOptions: MigrationOptions = {}): DataSource {
  return new DataSource({
    type: 'postgres',
    url,
    migrations: migrationsFor(migrationOptions),
    migrationsTableName: 'umbra_migrations',
    migrationsRun: false,
    synchronize: false,
    logging: false,
    extra: { max: poolSize, application_name: 'umbra' },
  });
}

const MIGRATION_LOCK = 0x756d6272; // "umbr"

/**
 * Runs pending migrations once, even when several processes start together. Needs a direct connection
 * to Postgres, not a transaction pooler (PgBouncer): the advisory lock is a session lock, which must
 * stay on one server connection from lock to unlock while the migrations run.
 */
export async function runMigrations(ds: DataSource): Promise<string[]> {
  const runner = ds.createQueryRunner();
  await runner.connect();
  try {
    await runner.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    const done = await ds.runMigrations({ transaction: 'each' });
    return done.map((m) => m.name);
  } finally {
    await runner.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    await runner.release();
  }
}

/** Creates the database named in the URL when it does not exist (bare-machine start and tests). */
export async function ensureDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1));
  if (!/^[A-Za-z0-9_]+$/.test(name)) throw new Error('database name must match [A-Za-z0-9_]+');
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (exists.rowCount === 0) {
      await client.query(`CREATE DATABASE "${name}"`).catch((err: { code?: string }) => {
        if (err.code !== '42P04') throw err;
      });
    }
  } finally {
    await client.end();
  }
}

/** Creates the database if needed and applies pending migrations; returns the names applied. */
export async function migrateDatabase(url: string, options: MigrationOptions = {}): Promise<string[]> {
  await ensureDatabase(url);
  const ds = createDataSource(url, 2, options);
  await ds.initialize();
  try {
    return await runMigrations(ds);
  } finally {
    await ds.destroy();
  }
}

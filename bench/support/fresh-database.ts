import { createDataSource } from '@umbra/server';

/**
 * Drops and creates the database `url` names, so a run does not inherit the rows (and the dead
 * tuples) of the runs before it: each run of a bench then starts from the same state.
 */
export async function recreateDatabase(url: string): Promise<void> {
  const parsed = new URL(url);
  const name = parsed.pathname.slice(1);
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`not a plain database name: ${name}`);
  parsed.pathname = '/postgres';
  const admin = createDataSource(parsed.toString(), 1);
  await admin.initialize();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.destroy();
  }
}

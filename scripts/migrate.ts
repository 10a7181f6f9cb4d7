import { migrateDatabase } from '@umbra/server';

const url = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/umbra';
migrateDatabase(url).then(
  (applied) => process.stdout.write(`${JSON.stringify({ msg: 'migrations done', applied })}\n`),
  (err: unknown) => {
    process.stderr.write(`migration failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);

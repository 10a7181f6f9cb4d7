import { ENV_SCHEMA, migrateDatabase } from '@umbra/server';

const url = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/umbra';
Promise.resolve()
  .then(() => migrateDatabase(url, { envelopePartitions: ENV_SCHEMA.shape.ENVELOPE_PARTITIONS.parse(process.env.ENVELOPE_PARTITIONS) }))
  .then(
    (applied) => process.stdout.write(`${JSON.stringify({ msg: 'migrations done', applied })}\n`),
    (err: unknown) => {
      process.stderr.write(`migration failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );

import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ENV_SCHEMA } from '@umbra/server';
import { LAUNCHER_INSTANCES, loadLauncherConfig } from './lib/launcher-config';
import { ensureDatabases, MissingBinaryError } from './lib/local-databases';
import { PortInUseError, startStack } from './lib/stack';
import { writeKtTrustConfig } from './lib/kt-trust';

/**
 * `npm start`: the whole system on one machine. Postgres and Redis at DATABASE_URL / REDIS_URL
 * (default 127.0.0.1:5432 / 6379), or private ones started here when none answers; two gateway and
 * two relay instances behind one origin (default http://127.0.0.1:8080), embedded S3 unless
 * S3_ENDPOINT is set. Every port is listed in docs/operations.md. Ctrl-C stops everything.
 */
async function main(): Promise<void> {
  const log = (line: string) => process.stdout.write(`${JSON.stringify({ service: 'launcher', msg: line })}\n`);
  // Ctrl-C while starting: exit at once; the 'exit' hooks of the stack and the databases stop what already runs.
  const abort = () => process.exit(130);
  process.once('SIGINT', abort);
  process.once('SIGTERM', abort);
  const config = loadLauncherConfig(process.env);
  const configuredOrigin = process.env.PUBLIC_ORIGIN ? new URL(process.env.PUBLIC_ORIGIN) : undefined;
  const edgePort = config.EDGE_PORT ?? (configuredOrigin?.port ? Number(configuredOrigin.port) : 8080);
  const origin = configuredOrigin ?? new URL(`http://${config.BIND_HOST}:${edgePort}`);
  const root = path.resolve(__dirname, '..', '..');
  const dataDir = path.resolve(config.UMBRA_DATA_DIR ?? path.join(root, '.umbra'));
  const databases = await ensureDatabases({
    databaseUrl: process.env.DATABASE_URL,
    redisUrl: process.env.REDIS_URL,
    database: 'umbra',
    dir: dataDir,
    postgresPort: config.UMBRA_POSTGRES_PORT,
    redisPort: config.UMBRA_REDIS_PORT,
    log,
  });
  let stack;
  try {
    stack = await startStack({
      env: { ...process.env, PUBLIC_ORIGIN: origin.origin, DATABASE_URL: databases.databaseUrl, REDIS_URL: databases.redisUrl },
      distDir: path.join(root, 'dist'),
      edgePort,
      host: config.BIND_HOST,
      instances: LAUNCHER_INSTANCES,
      basePort: config.SERVICES_BASE_PORT,
      s3Dir: config.S3_EMBEDDED_DIR ?? path.join(dataDir, 's3'),
      s3Port: config.S3_EMBEDDED_PORT,
      turn: { port: config.TURN_EMBEDDED_PORT, relayPorts: config.TURN_EMBEDDED_RELAY_PORTS, dir: path.join(dataDir, 'turn') },
      skip: config.UMBRA_SKIP_SERVICES,
      webDir: path.join(root, 'dist', 'web'),
      log,
    });
  } catch (err) {
    await databases.stop();
    throw err;
  }
  for (const { name, port } of stack.skipped) {
    // Local development settings only (trust-auth databases, the embedded S3's fixed key).
    const file = path.join(dataDir, `${name}.env`);
    const keys = Object.keys(ENV_SCHEMA.shape).filter((k) => stack.serviceEnv[k] !== undefined && k !== 'PORT' && k !== 'INSTANCE_ID');
    const lines = [...keys.map((k) => `${k}=${stack.serviceEnv[k]}`), `PORT=${port}`, `HOST=${config.BIND_HOST}`, `INSTANCE_ID=${name}-dev`];
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(file, `${lines.join('\n')}\n`, { mode: 0o600 });
    log(`${name} is yours to run (UMBRA_SKIP_SERVICES): npx nest start ${name} --watch --env-file ${path.relative(process.cwd(), file) || file}`);
  }
  const ktFile = path.join(dataDir, 'kt.json');
  const ktSource = await writeKtTrustConfig(stack.origin, stack.serviceEnv, ktFile);
  log(`key-transparency trust configuration (log key, witness keys, quorum) written to ${ktFile} (from the ${ktSource === 'log' ? "log's /v1/kt/config" : 'environment'}); pin it with --kt-config / UMBRA_KT_CONFIG`);
  log(`Umbra is up at ${stack.origin} (web client: ${stack.origin}/, OpenAPI: ${stack.origin}/openapi.json, readiness: ${stack.origin}/readyz)`);
  const shutdown = () => {
    log('stopping');
    stack
      .stop()
      .then(() => databases.stop())
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  };
  process.removeListener('SIGINT', abort);
  process.removeListener('SIGTERM', abort);
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

main().catch((err: unknown) => {
  const known = err instanceof PortInUseError || err instanceof MissingBinaryError || (err instanceof Error && /^invalid launcher configuration|is not reachable/.test(err.message));
  process.stderr.write(`start failed: ${known ? (err as Error).message : err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});

import path from 'node:path';
import { startStack } from './lib/stack';

/**
 * `npm start`: the whole system on one machine against the local Postgres and Redis. Two gateway
 * and two relay instances behind one origin (default http://127.0.0.1:8080), embedded S3 unless
 * S3_ENDPOINT is set. Ctrl-C stops everything.
 */
async function main(): Promise<void> {
  const log = (line: string) => process.stdout.write(`${JSON.stringify({ service: 'launcher', msg: line })}\n`);
  const origin = new URL(process.env.PUBLIC_ORIGIN ?? 'http://127.0.0.1:8080');
  const root = path.resolve(__dirname, '..', '..');
  const stack = await startStack({
    env: { ...process.env, PUBLIC_ORIGIN: origin.origin },
    distDir: path.join(root, 'dist'),
    edgePort: Number(process.env.EDGE_PORT ?? origin.port ?? 8080),
    host: process.env.BIND_HOST ?? '127.0.0.1',
    instances: { gateway: 2, 'message-relay': 2 },
    basePort: Number(process.env.SERVICES_BASE_PORT ?? 3000),
    s3Dir: process.env.S3_EMBEDDED_DIR ?? path.join(root, '.umbra', 's3'),
    s3Port: Number(process.env.S3_EMBEDDED_PORT ?? 9000),
    log,
  });
  log(`Umbra is up at ${stack.origin} (OpenAPI: ${stack.origin}/openapi.json)`);
  const shutdown = () => {
    log('stopping');
    stack.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

main().catch((err: unknown) => {
  process.stderr.write(`start failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});

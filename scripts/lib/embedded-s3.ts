import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
// s3rver is CommonJS without types.
import S3rverModule from '@20minutes/s3rver';

interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}
type S3rverCtor = new (opts: Record<string, unknown>) => S3rverInstance;
const S3rver = S3rverModule as unknown as S3rverCtor;

/**
 * An S3-compatible server for a machine with none configured. It checks request signatures
 * (credentials S3RVER / S3RVER), so presigned URLs behave as on real S3.
 */
export async function startEmbeddedS3(opts: { port: number; host: string; directory: string; bucket: string }): Promise<{ endpoint: string; close: () => Promise<void> }> {
  mkdirSync(opts.directory, { recursive: true });
  const server = new S3rver({
    port: opts.port,
    address: opts.host,
    directory: opts.directory,
    silent: true,
    allowMismatchedSignatures: false,
    vhostBuckets: false,
    configureBuckets: [{ name: opts.bucket }],
  });
  const addr = await server.run();
  return { endpoint: `http://${opts.host}:${addr.port}`, close: () => server.close() };
}

import { mkdirSync } from 'node:fs';
import { readFile, readdir, rm, stat } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
// s3rver is CommonJS without types.
import S3rverModule from '@20minutes/s3rver';
import authenticationModule from '@20minutes/s3rver/lib/middleware/authentication.js';
import S3ErrorModule from '@20minutes/s3rver/lib/models/error.js';

interface KoaContext {
  method: string;
  path: string;
  query: Record<string, string | undefined>;
  params: Record<string, string>;
  status: number;
  body: unknown;
}
type Middleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;
interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  middleware: Middleware[];
}
const authentication = authenticationModule as unknown as () => Middleware;
const S3Error = S3ErrorModule as unknown as new (code: string, message: string) => Error;

/**
 * s3rver implements multipart uploads but not ListParts (GET ?uploadId) nor AbortMultipartUpload
 * (DELETE ?uploadId), which resumable uploads and cleanup need. This adds both over its own
 * filesystem layout, after its signature check, and refuses UploadPart to an upload that is gone.
 */
function multipartExtras(directory: string): Middleware {
  const auth = authentication();
  return async (ctx, next) => {
    const uploadId = ctx.query.uploadId;
    const m = /^\/([^/]+)\/(.+)$/.exec(ctx.path);
    if (uploadId && m && ctx.method === 'PUT' && ctx.query.partNumber !== undefined) {
      // s3rver would recreate a completed or aborted upload's directory; S3 answers NoSuchUpload.
      const dir = path.join(directory, m[1]!, `._S3rver_uploads`, uploadId);
      if (!/^[0-9a-f]{32}$/.test(uploadId) || !(await stat(dir).then(() => true, () => false))) throw new S3Error('NoSuchUpload', 'The specified upload does not exist.');
      return next();
    }
    if (!uploadId || !m || ctx.query.partNumber !== undefined || (ctx.method !== 'GET' && ctx.method !== 'DELETE')) return next();
    const [, bucket, key] = m as unknown as [string, string, string];
    ctx.params = { bucket, key };
    await auth(ctx, async () => {
      const dir = path.join(directory, bucket, `._S3rver_uploads`, uploadId);
      const exists = /^[0-9a-f]{32}$/.test(uploadId) && (await stat(dir).then(() => true, () => false)) && (await readFile(path.join(dir, 'key'), 'utf8')) === key;
      if (!exists) throw new S3Error('NoSuchUpload', 'The specified upload does not exist.');
      if (ctx.method === 'DELETE') {
        await rm(dir, { recursive: true, force: true });
        ctx.status = 204;
        ctx.body = null;
        return;
      }
      const names = (await readdir(dir)).filter((n) => /^[0-9]+$/.test(n)).map(Number).sort((a, b) => a - b);
      const Part = await Promise.all(
        names.map(async (n) => {
          const st = await stat(path.join(dir, String(n)));
          const md5 = await readFile(path.join(dir, `${n}.md5`), 'utf8');
          return { PartNumber: n, ETag: `"${md5}"`, Size: st.size, LastModified: st.mtime.toISOString() };
        }),
      );
      ctx.body = { ListPartsResult: { Bucket: bucket, Key: key, UploadId: uploadId, PartNumberMarker: 0, MaxParts: 10000, IsTruncated: false, ...(Part.length ? { Part } : {}) } };
    });
  };
}
type S3rverCtor = new (opts: Record<string, unknown>) => S3rverInstance;
const S3rver = S3rverModule as unknown as S3rverCtor;

/**
 * The web client PUTs parts to and GETs blobs from pre-signed URLs on another origin, so the bucket
 * answers CORS as an S3 bucket configured for browser uploads would: any origin (the signature is the
 * authorisation), GET/PUT/HEAD, any request header, the ETag readable.
 */
export const BROWSER_CORS = `<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod><AllowedMethod>HEAD</AllowedMethod><AllowedHeader>*</AllowedHeader><ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>3000</MaxAgeSeconds></CORSRule></CORSConfiguration>`;

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
    configureBuckets: [{ name: opts.bucket, configs: [BROWSER_CORS] }],
  });
  // Before the router (the last middleware), after the XML encoder.
  server.middleware.splice(server.middleware.length - 1, 0, multipartExtras(opts.directory));
  const addr = await server.run();
  return { endpoint: `http://${opts.host}:${addr.port}`, close: () => server.close() };
}

import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { AppConfig } from '@umbra/server';

/** The S3-compatible client for attachments (any S3 service, MinIO, or the embedded store). */
export function createS3Client(config: AppConfig): S3Client {
  return new S3Client({
    region: config.S3_REGION,
    ...(config.S3_ENDPOINT ? { endpoint: config.S3_ENDPOINT } : {}),
    forcePathStyle: config.S3_FORCE_PATH_STYLE,
    credentials: { accessKeyId: config.S3_ACCESS_KEY_ID.reveal(), secretAccessKey: config.S3_SECRET_ACCESS_KEY.reveal() },
  });
}

/**
 * Readiness: a signed HEAD of a key that does not exist. 404 proves the endpoint, the credentials
 * and the bucket; anything else (403, 5xx, network) is not ready. (HeadBucket is avoided: the
 * embedded store mis-verifies its signature.)
 */
export async function checkBucket(s3: S3Client, bucket: string): Promise<void> {
  try {
    await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: '.umbra-readiness-probe' }));
  } catch (err) {
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status === 404) return;
    throw err;
  }
}

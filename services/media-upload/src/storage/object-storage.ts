import { HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
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

export async function checkBucket(s3: S3Client, bucket: string): Promise<void> {
  await s3.send(new HeadBucketCommand({ Bucket: bucket }));
}

import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { AppConfig } from '../config/config';

export interface StoredPart {
  partNumber: number;
  size: number;
  etag: string;
}

function s3Client(config: AppConfig, endpoint: string | undefined): S3Client {
  return new S3Client({
    region: config.S3_REGION,
    ...(endpoint ? { endpoint } : {}),
    forcePathStyle: config.S3_FORCE_PATH_STYLE,
    credentials: { accessKeyId: config.S3_ACCESS_KEY_ID.reveal(), secretAccessKey: config.S3_SECRET_ACCESS_KEY.reveal() },
    // Presigned URLs must not demand checksum headers the uploading client does not send.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

/**
 * The S3-compatible object store of attachment blobs (any S3 service, MinIO, or the embedded
 * store). Server-side calls go to S3_ENDPOINT; pre-signed URLs name S3_PUBLIC_ENDPOINT, the
 * address clients reach. The server never proxies blob bytes.
 */
export class ObjectStore {
  private readonly s3: S3Client;
  private readonly presigner: S3Client;
  readonly bucket: string;

  constructor(config: AppConfig) {
    this.bucket = config.S3_BUCKET;
    this.s3 = s3Client(config, config.S3_ENDPOINT);
    const publicEndpoint = config.S3_PUBLIC_ENDPOINT ?? config.S3_ENDPOINT;
    this.presigner = publicEndpoint === config.S3_ENDPOINT ? this.s3 : s3Client(config, publicEndpoint);
  }

  /**
   * Readiness: a signed HEAD of a key that does not exist. 404 proves the endpoint, the credentials
   * and the bucket; anything else (403, 5xx, network) is not ready. (HeadBucket is avoided: the
   * embedded store mis-verifies its signature.)
   */
  async checkReady(): Promise<void> {
    await this.size('.umbra-readiness-probe');
  }

  /**
   * Upload URLs sign Content-Length (the SDK's presigner puts it in X-Amz-SignedHeaders): the store
   * refuses a PUT of any other length with 403, so a URL can never store more than it was issued for.
   */
  presignPut(key: string, contentLength: number, ttlS: number): Promise<string> {
    return getSignedUrl(this.presigner, new PutObjectCommand({ Bucket: this.bucket, Key: key, ContentLength: contentLength }), { expiresIn: ttlS });
  }

  presignPart(key: string, uploadId: string, partNumber: number, contentLength: number, ttlS: number): Promise<string> {
    return getSignedUrl(
      this.presigner,
      new UploadPartCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumber: partNumber, ContentLength: contentLength }),
      { expiresIn: ttlS },
    );
  }

  presignGet(key: string, ttlS: number): Promise<string> {
    return getSignedUrl(this.presigner, new GetObjectCommand({ Bucket: this.bucket, Key: key }), { expiresIn: ttlS });
  }

  async createMultipart(key: string): Promise<string> {
    const res = await this.s3.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key, ContentType: 'application/octet-stream' }));
    if (!res.UploadId) throw new Error('object store returned no UploadId');
    return res.UploadId;
  }

  /** Parts stored so far (all pages). */
  async listParts(key: string, uploadId: string): Promise<StoredPart[]> {
    const parts: StoredPart[] = [];
    let marker: string | undefined;
    for (;;) {
      const res = await this.s3.send(new ListPartsCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, ...(marker ? { PartNumberMarker: marker } : {}) }));
      for (const p of res.Parts ?? []) if (p.PartNumber && p.ETag) parts.push({ partNumber: p.PartNumber, size: p.Size ?? 0, etag: p.ETag });
      if (!res.IsTruncated || !res.NextPartNumberMarker) break;
      marker = res.NextPartNumberMarker;
    }
    return parts.sort((a, b) => a.partNumber - b.partNumber);
  }

  /**
   * Completes a multipart upload; from then on its upload id is gone, so its part URLs are refused.
   * False when S3 refuses the part list (a part was replaced since it was listed).
   */
  async completeMultipart(key: string, uploadId: string, parts: StoredPart[]): Promise<boolean> {
    try {
      await this.s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag })) },
        }),
      );
      return true;
    } catch (err) {
      if (statusOf(err) === 400) return false;
      throw err;
    }
  }

  /** Aborts an unfinished multipart upload; one that is already gone is fine. */
  async abortMultipart(key: string, uploadId: string): Promise<void> {
    try {
      await this.s3.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }));
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
    }
  }

  /** Size of a stored object, undefined when there is none. */
  async size(key: string): Promise<number | undefined> {
    try {
      const res = await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return res.ContentLength ?? 0;
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  }

  /** Deletes an object; S3 answers 204 whether it existed or not. */
  async delete(key: string): Promise<void> {
    try {
      await this.s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
    }
  }

  close(): void {
    this.s3.destroy();
    if (this.presigner !== this.s3) this.presigner.destroy();
  }
}

import { Inject, Module, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { S3Client } from '@aws-sdk/client-s3';
import { APP_CONFIG, HealthService, type AppConfig } from '@umbra/server';
import { checkBucket, createS3Client } from './object-storage';

@Module({
  providers: [{ provide: S3Client, inject: [APP_CONFIG], useFactory: (config: AppConfig) => createS3Client(config) }],
  exports: [S3Client],
})
export class StorageModule implements OnModuleInit, OnModuleDestroy {
  constructor(
    @Inject(S3Client) private readonly s3: S3Client,
    @Inject(HealthService) private readonly health: HealthService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onModuleInit(): void {
    this.health.addCheck('s3', () => checkBucket(this.s3, this.config.S3_BUCKET));
  }

  onModuleDestroy(): void {
    this.s3.destroy();
  }
}

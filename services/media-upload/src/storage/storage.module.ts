import { Inject, Module, type OnModuleInit } from '@nestjs/common';
import { AttachmentsModule, HealthService, ObjectStore } from '@umbra/server';

/** Readiness of the object store (a signed HEAD, see ObjectStore.checkReady). */
@Module({ imports: [AttachmentsModule] })
export class StorageModule implements OnModuleInit {
  constructor(
    @Inject(ObjectStore) private readonly store: ObjectStore,
    @Inject(HealthService) private readonly health: HealthService,
  ) {}

  onModuleInit(): void {
    this.health.addCheck('s3', () => this.store.checkReady());
  }
}

import { Inject, Module, type OnModuleDestroy } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { APP_CONFIG, type AppConfig } from '../config/config';
import { AttachmentsRepository } from '../database/attachments.repository';
import { LOGGER, type Logger } from '../logging/logger';
import { Metrics } from '../metrics/metrics';
import { ObjectStore } from '../storage/object-store';
import { AttachmentReaper } from './attachment-reaper.service';

/**
 * Attachment rows, the object store and the reaper, for any service that creates or deletes
 * attachments (media-upload; the expiry worker when messages vanish).
 */
@Module({
  providers: [
    { provide: AttachmentsRepository, inject: [DataSource], useFactory: (ds: DataSource) => new AttachmentsRepository(ds) },
    { provide: ObjectStore, inject: [APP_CONFIG], useFactory: (config: AppConfig) => new ObjectStore(config) },
    {
      provide: AttachmentReaper,
      inject: [AttachmentsRepository, ObjectStore, Metrics, LOGGER],
      useFactory: (r: AttachmentsRepository, s: ObjectStore, m: Metrics, l: Logger) => new AttachmentReaper(r, s, m, l),
    },
  ],
  exports: [AttachmentsRepository, ObjectStore, AttachmentReaper],
})
export class AttachmentsModule implements OnModuleDestroy {
  constructor(@Inject(ObjectStore) private readonly store: ObjectStore) {}

  onModuleDestroy(): void {
    this.store.close();
  }
}

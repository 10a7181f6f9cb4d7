import type { ServiceDefinition } from '@umbra/server';
import { AttachmentsModule } from './attachments/attachments.module';
import { StorageModule } from './storage/storage.module';

export const mediaUploadService: ServiceDefinition = {
  name: 'media-upload',
  imports: () => [StorageModule, AttachmentsModule],
};

import type { ServiceDefinition } from '@umbra/server';
import { StorageModule } from './storage/storage.module';

export const mediaUploadService: ServiceDefinition = {
  name: 'media-upload',
  imports: () => [StorageModule],
};

import 'reflect-metadata';
import { runService } from '@umbra/server';
import { mediaUploadService } from './media-upload.service';

void runService(mediaUploadService);

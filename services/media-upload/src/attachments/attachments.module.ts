import { Module } from '@nestjs/common';
import { AttachmentsModule as AttachmentStoreModule } from '@umbra/server';
import { AttachmentCleanupService } from './attachment-cleanup.service';
import { AttachmentsController } from './attachments.controller';
import { AttachmentsService } from './attachments.service';

@Module({ imports: [AttachmentStoreModule], controllers: [AttachmentsController], providers: [AttachmentsService, AttachmentCleanupService] })
export class AttachmentsModule {}

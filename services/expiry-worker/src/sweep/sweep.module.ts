import { Module } from '@nestjs/common';
import { AttachmentsModule } from '@umbra/server';
import { AttachmentDeleter } from '../expiry/attachment.deleter';
import { ExpiryService } from '../expiry/expiry.service';
import { SweepService } from './sweep.service';

@Module({ imports: [AttachmentsModule], providers: [AttachmentDeleter, ExpiryService, SweepService] })
export class SweepModule {}

import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, UseGuards } from '@nestjs/common';
import { AttachmentParamSchema, CreateAttachmentRequestSchema, type CreateAttachmentRequest } from '@umbra/protocol';
import { AuthGuard, CurrentDevice, ZodPipe, type AuthContext } from '@umbra/server';
import { AttachmentsService } from './attachments.service';

@Controller('v1/attachments')
@UseGuards(AuthGuard)
export class AttachmentsController {
  constructor(@Inject(AttachmentsService) private readonly attachments: AttachmentsService) {}

  @Post()
  @HttpCode(201)
  create(@CurrentDevice() auth: AuthContext, @Body(new ZodPipe(CreateAttachmentRequestSchema)) body: CreateAttachmentRequest) {
    return this.attachments.create(auth, body);
  }

  @Get(':id/parts')
  parts(@CurrentDevice() auth: AuthContext, @Param(new ZodPipe(AttachmentParamSchema)) params: { id: string }) {
    return this.attachments.parts(auth, params.id);
  }

  @Post(':id/complete')
  @HttpCode(200)
  complete(@CurrentDevice() auth: AuthContext, @Param(new ZodPipe(AttachmentParamSchema)) params: { id: string }) {
    return this.attachments.complete(auth, params.id);
  }

  @Delete(':id')
  @HttpCode(204)
  remove(@CurrentDevice() auth: AuthContext, @Param(new ZodPipe(AttachmentParamSchema)) params: { id: string }) {
    return this.attachments.remove(auth, params.id);
  }

  @Get(':id')
  download(@CurrentDevice() auth: AuthContext, @Param(new ZodPipe(AttachmentParamSchema)) params: { id: string }) {
    return this.attachments.download(auth, params.id);
  }
}

import { Body, Controller, HttpCode, Inject, Post, UseGuards } from '@nestjs/common';
import { RecallRequestSchema, type RecallRequest, type RecallResult } from '@umbra/protocol';
import { AuthGuard, CurrentDevice, ZodPipe, type AuthContext } from '@umbra/server';
import { RecallService } from './recall.service';

/** POST /v1/messages/recall: recall this device's own send before delivery. */
@Controller('v1/messages')
@UseGuards(AuthGuard)
export class RecallController {
  constructor(@Inject(RecallService) private readonly recalls: RecallService) {}

  @Post('recall')
  @HttpCode(200)
  recall(@CurrentDevice() auth: AuthContext, @Body(new ZodPipe(RecallRequestSchema)) body: RecallRequest): Promise<RecallResult> {
    return this.recalls.recall(auth, body);
  }
}

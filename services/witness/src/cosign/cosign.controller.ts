import { Body, Controller, Get, HttpCode, Inject, Ip, Post } from '@nestjs/common';
import { WitnessAddSthRequestSchema, type WitnessAddSthRequest } from '@umbra/protocol';
import { ZodPipe } from '@umbra/server';
import { CosignService } from './cosign.service';

@Controller('v1/witness')
export class CosignController {
  constructor(@Inject(CosignService) private readonly cosign: CosignService) {}

  @Post('add-sth')
  @HttpCode(200)
  addSth(@Body(new ZodPipe(WitnessAddSthRequestSchema)) body: WitnessAddSthRequest, @Ip() ip: string) {
    return this.cosign.addSth(body, ip);
  }

  @Get('state')
  state(@Ip() ip: string) {
    return this.cosign.state(ip);
  }
}

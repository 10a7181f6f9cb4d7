import { Body, Controller, Get, HttpCode, Inject, Ip, Param, Put, UseGuards } from '@nestjs/common';
import { LinkReplySchema, ProvisioningMessageSchema, ProvisioningParamSchema } from '@umbra/protocol';
import { AuthGuard, CurrentDevice, ZodPipe, type AuthContext } from '@umbra/server';
import { ProvisioningService } from './provisioning.service';

@Controller('v1/provisioning/:channel')
export class ProvisioningController {
  constructor(@Inject(ProvisioningService) private readonly provisioning: ProvisioningService) {}

  @Put('message')
  @HttpCode(204)
  @UseGuards(AuthGuard)
  putMessage(@CurrentDevice() auth: AuthContext, @Param(new ZodPipe(ProvisioningParamSchema)) p: { channel: string }, @Body(new ZodPipe(ProvisioningMessageSchema)) body: { message: string }) {
    return this.provisioning.putMessage(auth, p.channel, body.message);
  }

  @Get('message')
  getMessage(@Param(new ZodPipe(ProvisioningParamSchema)) p: { channel: string }, @Ip() ip: string) {
    return this.provisioning.getMessage(p.channel, ip);
  }

  @Put('reply')
  @HttpCode(204)
  putReply(@Param(new ZodPipe(ProvisioningParamSchema)) p: { channel: string }, @Body(new ZodPipe(LinkReplySchema)) body: { reply: string }, @Ip() ip: string) {
    return this.provisioning.putReply(p.channel, body.reply, ip);
  }

  @Get('reply')
  @UseGuards(AuthGuard)
  getReply(@CurrentDevice() auth: AuthContext, @Param(new ZodPipe(ProvisioningParamSchema)) p: { channel: string }) {
    return this.provisioning.getReply(auth, p.channel);
  }
}

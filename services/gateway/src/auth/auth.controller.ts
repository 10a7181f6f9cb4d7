import { Body, Controller, Get, HttpCode, Inject, Ip, Post } from '@nestjs/common';
import { TokenRequestSchema } from '@umbra/protocol';
import { ZodPipe } from '@umbra/server';
import { AuthService } from './auth.service';

@Controller('v1/auth')
export class AuthController {
  constructor(@Inject(AuthService) private readonly auth: AuthService) {}

  @Get('challenge')
  challenge(@Ip() ip: string) {
    return this.auth.challenge(ip);
  }

  @Post('token')
  @HttpCode(200)
  token(@Body(new ZodPipe(TokenRequestSchema)) body: { authResponse: string }, @Ip() ip: string) {
    return this.auth.token(body.authResponse, ip);
  }
}

import { Body, Controller, Delete, Get, HttpCode, Inject, Ip, Param, Post, Put, UseGuards } from '@nestjs/common';
import {
  AccountParamSchema,
  HandleClaimRequestSchema,
  HandleParamSchema,
  RegisterRequestSchema,
  UpdateDevicesRequestSchema,
  type RegisterRequest,
} from '@umbra/protocol';
import { AuthGuard, CurrentDevice, ZodPipe, type AuthContext } from '@umbra/server';
import { AccountsService } from './accounts.service';

@Controller('v1/accounts')
export class AccountsController {
  constructor(@Inject(AccountsService) private readonly accounts: AccountsService) {}

  @Get('pow')
  pow(@Ip() ip: string) {
    return this.accounts.powChallenge(ip);
  }

  @Post()
  @HttpCode(201)
  register(@Body(new ZodPipe(RegisterRequestSchema)) body: RegisterRequest, @Ip() ip: string) {
    return this.accounts.register(body, ip);
  }

  @Put('me/devices')
  @UseGuards(AuthGuard)
  updateDevices(@CurrentDevice() auth: AuthContext, @Body(new ZodPipe(UpdateDevicesRequestSchema)) body: { deviceList: string }) {
    return this.accounts.updateDevices(auth, body.deviceList);
  }

  @Put('me/handle')
  @UseGuards(AuthGuard)
  claimHandle(@CurrentDevice() auth: AuthContext, @Body(new ZodPipe(HandleClaimRequestSchema)) body: { claim: string }) {
    return this.accounts.claimHandle(auth, body.claim);
  }

  @Delete('me/handle')
  @HttpCode(204)
  @UseGuards(AuthGuard)
  releaseHandle(@CurrentDevice() auth: AuthContext) {
    return this.accounts.releaseHandle(auth);
  }

  @Get('by-handle/:handle')
  @UseGuards(AuthGuard)
  byHandle(@CurrentDevice() auth: AuthContext, @Param(new ZodPipe(HandleParamSchema)) params: { handle: string }) {
    return this.accounts.getAccountByHandle(auth, params.handle);
  }

  @Get(':accountId')
  @UseGuards(AuthGuard)
  get(@CurrentDevice() auth: AuthContext, @Param(new ZodPipe(AccountParamSchema)) params: { accountId: string }) {
    return this.accounts.getAccount(auth, params.accountId);
  }
}

import { Body, Controller, Get, HttpCode, Inject, Param, Put, Query, UseGuards } from '@nestjs/common';
import { AccountParamSchema, BundlesQuerySchema, UploadKeysRequestSchema, type UploadKeysRequest } from '@umbra/protocol';
import { AuthGuard, CurrentDevice, ZodPipe, type AuthContext } from '@umbra/server';
import { KeysService } from './keys.service';

@Controller('v1/keys')
@UseGuards(AuthGuard)
export class KeysController {
  constructor(@Inject(KeysService) private readonly keys: KeysService) {}

  @Put()
  @HttpCode(204)
  upload(@CurrentDevice() auth: AuthContext, @Body(new ZodPipe(UploadKeysRequestSchema)) body: UploadKeysRequest) {
    return this.keys.upload(auth, body);
  }

  @Get('me')
  counts(@CurrentDevice() auth: AuthContext) {
    return this.keys.counts(auth);
  }

  @Get(':accountId')
  bundles(
    @CurrentDevice() auth: AuthContext,
    @Param(new ZodPipe(AccountParamSchema)) params: { accountId: string },
    @Query(new ZodPipe(BundlesQuerySchema)) query: { deviceId?: number },
  ) {
    return this.keys.bundles(auth, params.accountId, query.deviceId);
  }
}

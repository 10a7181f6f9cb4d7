import { Controller, Get, Header, Inject, UseGuards } from '@nestjs/common';
import type { TurnCredentials } from '@umbra/protocol';
import { AuthGuard, CurrentDevice, type AuthContext } from '@umbra/server';
import { TurnCredentialsService } from './turn-credentials.service';

/** GET /v1/calls/relays: TURN credentials for this account's calls. */
@Controller('v1/calls')
@UseGuards(AuthGuard)
export class CallsController {
  constructor(@Inject(TurnCredentialsService) private readonly turn: TurnCredentialsService) {}

  @Get('relays')
  @Header('Cache-Control', 'no-store')
  relays(@CurrentDevice() auth: AuthContext): Promise<TurnCredentials> {
    return this.turn.issue(auth);
  }
}

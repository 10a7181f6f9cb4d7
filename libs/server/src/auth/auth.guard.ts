import { type CanActivate, type ExecutionContext, Inject, Injectable, createParamDecorator } from '@nestjs/common';
import type { Request } from 'express';
import { ApiError } from '../errors/api-error';
import { Metrics } from '../metrics/metrics';
import { TokenService, bearerFrom, type AuthContext } from './token.service';

type AuthedRequest = Request & { auth?: AuthContext };

/** The one guard every service uses for bearer tokens. */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    @Inject(TokenService) private readonly tokens: TokenService,
    @Inject(Metrics) private readonly metrics: Metrics,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<AuthedRequest>();
    try {
      req.auth = await this.tokens.verify(bearerFrom(req.headers.authorization));
    } catch (err) {
      if (err instanceof ApiError) this.metrics.authFailures.inc({ reason: err.code });
      throw err;
    }
    return true;
  }
}

export const CurrentDevice = createParamDecorator((_data: unknown, context: ExecutionContext): AuthContext => {
  const auth = context.switchToHttp().getRequest<AuthedRequest>().auth;
  if (!auth) throw new ApiError('UNAUTHENTICATED', 'authentication required');
  return auth;
});

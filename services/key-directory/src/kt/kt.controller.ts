import { Controller, Get, Inject, Ip, Query } from '@nestjs/common';
import {
  KtConsistencyQuerySchema,
  KtLeavesQuerySchema,
  KtLookupQuerySchema,
  KtMonitorQuerySchema,
  type KtConsistencyQuery,
  type KtLeavesQuery,
  type KtLookupQuery,
  type KtMonitorQuery,
} from '@umbra/protocol';
import { ZodPipe } from '@umbra/server';
import { KtService } from './kt.service';

/** Key transparency (PROTOCOL.md §12): unauthenticated reads of the log. */
@Controller('v1/kt')
export class KtController {
  constructor(@Inject(KtService) private readonly kt: KtService) {}

  @Get('config')
  config() {
    return this.kt.trustConfig();
  }

  @Get('sth')
  sth() {
    return this.kt.sth();
  }

  @Get('consistency')
  consistency(@Ip() ip: string, @Query(new ZodPipe(KtConsistencyQuerySchema)) q: KtConsistencyQuery) {
    return this.kt.consistency(ip, q);
  }

  @Get('lookup')
  lookup(@Ip() ip: string, @Query(new ZodPipe(KtLookupQuerySchema)) q: KtLookupQuery) {
    return this.kt.lookup(ip, q);
  }

  @Get('monitor')
  monitor(@Ip() ip: string, @Query(new ZodPipe(KtMonitorQuerySchema)) q: KtMonitorQuery) {
    return this.kt.monitor(ip, q);
  }

  @Get('leaves')
  leaves(@Ip() ip: string, @Query(new ZodPipe(KtLeavesQuerySchema)) q: KtLeavesQuery) {
    return this.kt.leaves(ip, q);
  }
}

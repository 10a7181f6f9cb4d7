import { Body, Controller, Get, HttpCode, Inject, Post, Query, UseGuards } from '@nestjs/common';
import { AckRequestSchema, FetchQuerySchema, LIMITS, ReadRequestSchema, SendRequestSchema, type AckRequest, type FetchResponse, type ReadRequest, type SendRequest } from '@umbra/protocol';
import { AuthGuard, Clock, CurrentDevice, DeviceQueueRepository, ZodPipe, toDeliveredEnvelope, type AuthContext } from '@umbra/server';
import { AckClient } from '../delivery/ack.client';
import { ReadService } from './read.service';
import { SendService } from './send.service';

/** REST equivalents of the socket events, for clients without a socket. */
@Controller('v1/messages')
@UseGuards(AuthGuard)
export class MessagesController {
  constructor(
    @Inject(SendService) private readonly sends: SendService,
    @Inject(DeviceQueueRepository) private readonly envelopes: DeviceQueueRepository,
    @Inject(AckClient) private readonly acks: AckClient,
    @Inject(ReadService) private readonly reads: ReadService,
    @Inject(Clock) private readonly clock: Clock,
  ) {}

  @Post()
  @HttpCode(200)
  send(@CurrentDevice() auth: AuthContext, @Body(new ZodPipe(SendRequestSchema)) body: SendRequest) {
    return this.sends.send(auth, body);
  }

  @Get()
  async fetch(@CurrentDevice() auth: AuthContext, @Query(new ZodPipe(FetchQuerySchema)) query: { limit?: number; after?: string }): Promise<FetchResponse> {
    const page = await this.envelopes.fetchPage(auth, query.after ?? '0', query.limit ?? LIMITS.FETCH_PAGE_MAX, this.clock.now());
    return { messages: page.envelopes.map((e) => toDeliveredEnvelope(e)), more: page.more };
  }

  @Post('ack')
  @HttpCode(200)
  async ack(@CurrentDevice() auth: AuthContext, @Body(new ZodPipe(AckRequestSchema)) body: AckRequest) {
    await this.acks.ackAndWait(auth, body.ids);
    return { acked: body.ids.length };
  }

  @Post('read')
  @HttpCode(200)
  read(@CurrentDevice() auth: AuthContext, @Body(new ZodPipe(ReadRequestSchema)) body: ReadRequest) {
    return this.reads.markRead(auth, body.ids);
  }
}

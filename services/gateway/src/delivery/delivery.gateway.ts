import { Inject } from '@nestjs/common';
import { type OnGatewayConnection, type OnGatewayDisconnect, type OnGatewayInit, WebSocketGateway } from '@nestjs/websockets';
import type { Server } from 'socket.io';
import {
  AckRequestSchema,
  ClientEvent,
  LIMITS,
  ReadRequestSchema,
  SendRequestSchema,
  WS_PATH,
  type WsAck,
} from '@umbra/protocol';
import {
  APP_CONFIG,
  ApiError,
  Clock,
  LOGGER,
  Metrics,
  TokenBucket,
  TokenService,
  newCorrelationId,
  parseOrThrow,
  toErrorBody,
  withCorrelationId,
  type AppConfig,
  type Logger,
} from '@umbra/server';
import { ReadService } from '../messages/read.service';
import { SendService } from '../messages/send.service';
import { AckClient } from './ack.client';
import { ConnectionsService, type ClientSocket } from './connections.service';

const MAX_FRAME = Math.ceil((LIMITS.MAX_SEND_TOTAL_BYTES * 4) / 3) + 256 * 1024;

/** socket.io on /v1/ws: token auth in the handshake, then `send` and `ack`. Thin: services do the work. */
@WebSocketGateway({
  path: WS_PATH,
  transports: ['websocket'],
  serveClient: false,
  perMessageDeflate: false,
  maxHttpBufferSize: MAX_FRAME,
  pingInterval: 25_000,
  pingTimeout: 20_000,
  cors: { origin: true },
})
export class DeliveryGateway implements OnGatewayInit, OnGatewayConnection, OnGatewayDisconnect {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(TokenService) private readonly tokens: TokenService,
    @Inject(ConnectionsService) private readonly connections: ConnectionsService,
    @Inject(SendService) private readonly sends: SendService,
    @Inject(AckClient) private readonly acks: AckClient,
    @Inject(ReadService) private readonly reads: ReadService,
    @Inject(Clock) private readonly clock: Clock,
    @Inject(Metrics) private readonly metrics: Metrics,
  ) {}

  afterInit(server: Server): void {
    server.use((socket, next) => {
      const token = (socket.handshake.auth as { token?: unknown } | undefined)?.token;
      this.tokens.verify(typeof token === 'string' ? token : undefined).then(
        (auth) => {
          (socket as ClientSocket).data.auth = auth;
          next();
        },
        (err: unknown) => {
          const { body } = toErrorBody(err instanceof ApiError ? err : new ApiError('UNAVAILABLE', 'try again'));
          if (err instanceof ApiError) this.metrics.authFailures.inc({ reason: err.code });
          const e = new Error(body.error.code) as Error & { data: unknown };
          e.data = body;
          next(e);
        },
      );
    });
  }

  handleConnection(socket: ClientSocket): void {
    const auth = socket.data.auth;
    const bucket = new TokenBucket(this.config.RATE_LIMIT_SEND_PER_DEVICE_PER_SECOND, this.config.RATE_LIMIT_SEND_PER_DEVICE_PER_SECOND * 2, this.clock.now());

    socket.on(ClientEvent.Send, (payload: unknown, ack: unknown) => {
      if (typeof ack !== 'function') return;
      const reply = ack as (res: WsAck<unknown>) => void;
      withCorrelationId(newCorrelationId(), () => {
        const work = async () => {
          if (!bucket.take(this.clock.now())) {
            this.metrics.rateLimited.inc({ bucket: 'send' });
            throw new ApiError('RATE_LIMITED', 'too many sends; slow down');
          }
          return this.sends.send(auth, parseOrThrow(SendRequestSchema, payload));
        };
        work().then(
          (data) => reply({ ok: true, data }),
          (err: unknown) => reply(this.failure(err)),
        );
      });
    });

    socket.on(ClientEvent.Ack, (payload: unknown, ack: unknown) => {
      const reply = typeof ack === 'function' ? (ack as (res: WsAck<unknown>) => void) : undefined;
      try {
        const { ids } = parseOrThrow(AckRequestSchema, payload);
        this.acks.ack(auth, ids);
        this.connections.acked(socket, ids.length);
        reply?.({ ok: true, data: { acked: ids.length } });
      } catch (err) {
        reply?.(this.failure(err));
      }
    });

    socket.on(ClientEvent.Read, (payload: unknown, ack: unknown) => {
      const reply = typeof ack === 'function' ? (ack as (res: WsAck<unknown>) => void) : undefined;
      withCorrelationId(newCorrelationId(), () => {
        const work = async () => this.reads.markRead(auth, parseOrThrow(ReadRequestSchema, payload).ids);
        work().then(
          (data) => reply?.({ ok: true, data }),
          (err: unknown) => reply?.(this.failure(err)),
        );
      });
    });

    this.connections.connect(socket, auth).catch((err: unknown) => {
      this.logger.error({ err: String(err) }, 'connect failed');
      socket.disconnect(true);
    });
  }

  handleDisconnect(socket: ClientSocket): void {
    this.connections.disconnect(socket);
  }

  private failure(err: unknown): WsAck<never> {
    const { body, internal } = toErrorBody(err);
    if (internal) this.logger.error({ err: err instanceof Error ? err.stack : String(err) }, 'socket event failed');
    return { ok: false, error: { code: body.error.code, message: body.error.message, ...(body.error.details !== undefined ? { details: body.error.details } : {}) } };
  }
}

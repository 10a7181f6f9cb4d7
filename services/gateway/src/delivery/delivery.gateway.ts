import { Inject } from '@nestjs/common';
import { type OnGatewayConnection, type OnGatewayDisconnect, type OnGatewayInit, WebSocketGateway } from '@nestjs/websockets';
import type { Server } from 'socket.io';
import {
  AckRequestSchema,
  ClientEvent,
  LIMITS,
  MAX_SOCKET_FRAME_BYTES,
  ReadRequestSchema,
  SendRequestSchema,
  TypingRequestSchema,
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
import { TypingService } from '../messages/typing.service';
import { AckClient } from './ack.client';
import type { ClientSocket } from './connection.registry';
import { ConnectionsService } from './connections.service';

/** The ws receiver of an engine.io websocket connection, whose frame limit applies to the next frame read. */
type FrameLimited = { transport?: { socket?: { _receiver?: { _maxPayload?: unknown } } } };

/**
 * Sets the largest frame this connection may send next. engine.io has one limit for every
 * connection (maxHttpBufferSize); this lowers it until the token is verified. The websocket
 * transport is the only one enabled; a test proves a large pre-auth frame is refused.
 */
function limitFrames(conn: unknown, bytes: number): boolean {
  const receiver = (conn as FrameLimited).transport?.socket?._receiver;
  if (!receiver || typeof receiver._maxPayload !== 'number') return false;
  receiver._maxPayload = bytes;
  return true;
}

/**
 * A client event is `(payload, ack?)`: the acknowledgement is the last argument when it is a function,
 * so a client that sends extra arguments is still answered (with VALIDATION_FAILED) instead of timing out.
 */
function eventArgs(args: unknown[]): { payload: () => unknown; reply: ((res: WsAck<unknown>) => void) | undefined } {
  const last = args[args.length - 1];
  const reply = typeof last === 'function' ? (last as (res: WsAck<unknown>) => void) : undefined;
  const data = reply ? args.slice(0, -1) : args;
  return {
    reply,
    payload: () => {
      if (data.length !== 1) throw new ApiError('VALIDATION_FAILED', `expected one payload argument, got ${data.length}`);
      return data[0];
    },
  };
}

/** socket.io on /v1/ws: token auth in the handshake, then `send`, `ack`, `read` and `typing`. Thin: services do the work. */
@WebSocketGateway({
  path: WS_PATH,
  transports: ['websocket'],
  serveClient: false,
  perMessageDeflate: false,
  maxHttpBufferSize: MAX_SOCKET_FRAME_BYTES,
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
    @Inject(TypingService) private readonly typing: TypingService,
  ) {}

  afterInit(server: Server): void {
    // Until its token is verified a connection may send only a frame the size of a connect packet.
    server.engine.on('connection', (conn: { close(): void }) => {
      if (limitFrames(conn, LIMITS.MAX_SOCKET_PREAUTH_FRAME_BYTES)) return;
      // Fail closed: without the limit an unauthenticated client could have a large frame parsed.
      this.logger.error({}, 'cannot limit pre-auth frame size (socket.io internals changed); refusing the connection');
      conn.close();
    });
    server.use((socket, next) => {
      const token = (socket.handshake.auth as { token?: unknown } | undefined)?.token;
      this.tokens.verify(typeof token === 'string' ? token : undefined).then(
        (auth) => {
          (socket as ClientSocket).data.auth = auth;
          limitFrames(socket.conn, MAX_SOCKET_FRAME_BYTES);
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
    const ackBucket = new TokenBucket(LIMITS.SOCKET_ACK_EVENTS_PER_SECOND, LIMITS.SOCKET_ACK_EVENTS_PER_SECOND * 2, this.clock.now());
    const readBucket = new TokenBucket(LIMITS.SOCKET_READ_EVENTS_PER_SECOND, LIMITS.SOCKET_READ_EVENTS_PER_SECOND * 2, this.clock.now());

    socket.on(ClientEvent.Send, (...args: unknown[]) => {
      const { payload, reply } = eventArgs(args);
      if (!reply) return;
      withCorrelationId(newCorrelationId(), () => {
        // The send limit is the device's shared one, taken in SendService (REST sends draw from it too).
        const work = async () => this.sends.send(auth, parseOrThrow(SendRequestSchema, payload()));
        work().then(
          (data) => reply({ ok: true, data }),
          (err: unknown) => reply(this.failure(err)),
        );
      });
    });

    socket.on(ClientEvent.Ack, (...args: unknown[]) => {
      const { payload, reply } = eventArgs(args);
      try {
        const { ids } = parseOrThrow(AckRequestSchema, payload());
        if (!ackBucket.take(this.clock.now())) {
          this.metrics.rateLimited.inc({ bucket: 'socket_ack' });
          // Out of the window all the same; the rows stay queued and come again with a later drain.
          this.connections.acked(socket, ids, false);
          throw new ApiError('RATE_LIMITED', 'too many ack events; batch ids into fewer acks');
        }
        this.acks.ack(auth, ids);
        this.connections.acked(socket, ids);
        reply?.({ ok: true, data: { acked: ids.length } });
      } catch (err) {
        reply?.(this.failure(err));
      }
    });

    socket.on(ClientEvent.Read, (...args: unknown[]) => {
      const { payload, reply } = eventArgs(args);
      withCorrelationId(newCorrelationId(), () => {
        const work = async () => {
          const { ids } = parseOrThrow(ReadRequestSchema, payload());
          if (!readBucket.take(this.clock.now())) {
            this.metrics.rateLimited.inc({ bucket: 'socket_read' });
            throw new ApiError('RATE_LIMITED', 'too many read events; batch ids into fewer reports');
          }
          return this.reads.markRead(auth, ids);
        };
        work().then(
          (data) => reply?.({ ok: true, data }),
          (err: unknown) => reply?.(this.failure(err)),
        );
      });
    });

    const typingBucket = new TokenBucket(LIMITS.SOCKET_TYPING_EVENTS_PER_SECOND, LIMITS.SOCKET_TYPING_EVENTS_PER_SECOND * 2, this.clock.now());
    socket.on(ClientEvent.Typing, (...args: unknown[]) => {
      const { payload, reply } = eventArgs(args);
      const work = async () => {
        const req = parseOrThrow(TypingRequestSchema, payload());
        if (!typingBucket.take(this.clock.now())) {
          this.metrics.rateLimited.inc({ bucket: 'socket_typing' });
          throw new ApiError('RATE_LIMITED', 'too many typing events');
        }
        return this.typing.typing(auth, req);
      };
      work().then(
        (data) => reply?.({ ok: true, data }),
        (err: unknown) => reply?.(this.failure(err)),
      );
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

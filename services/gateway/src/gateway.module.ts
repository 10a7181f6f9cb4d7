import { Module } from '@nestjs/common';
import { AuthController } from './auth/auth.controller';
import { AuthService } from './auth/auth.service';
import { CallsController } from './calls/calls.controller';
import { TurnCredentialsService } from './calls/turn-credentials.service';
import { AckClient } from './delivery/ack.client';
import { ConnectionRegistry } from './delivery/connection.registry';
import { ConnectionsService } from './delivery/connections.service';
import { ControlEventsService } from './delivery/control-events.service';
import { PresenceWatchService } from './delivery/presence-watch.service';
import { DeliveryGateway } from './delivery/delivery.gateway';
import { PushDispatcher } from './delivery/push.dispatcher';
import { QueueChecker } from './delivery/queue.checker';
import { QueueDrainer } from './delivery/queue.drainer';
import { DeviceSetsCache } from './messages/device-sets.cache';
import { MessagesController } from './messages/messages.controller';
import { RelayClient } from './messages/relay.client';
import { ReadService } from './messages/read.service';
import { SendLimiter } from './messages/send.limiter';
import { SendService } from './messages/send.service';
import { RecallController } from './messages/recall.controller';
import { RecallService } from './messages/recall.service';
import { TypingService } from './messages/typing.service';
import { OpenApiController } from './openapi/openapi.controller';

@Module({
  controllers: [AuthController, MessagesController, RecallController, CallsController, OpenApiController],
  providers: [
    AuthService,
    TurnCredentialsService,
    RelayClient,
    DeviceSetsCache,
    SendLimiter,
    SendService,
    ReadService,
    RecallService,
    TypingService,
    AckClient,
    ConnectionRegistry,
    QueueDrainer,
    ControlEventsService,
    PushDispatcher,
    QueueChecker,
    ConnectionsService,
    PresenceWatchService,
    DeliveryGateway,
  ],
})
export class GatewayModule {}

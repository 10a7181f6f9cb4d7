import { Module } from '@nestjs/common';
import { AuthController } from './auth/auth.controller';
import { AuthService } from './auth/auth.service';
import { AckClient } from './delivery/ack.client';
import { ConnectionsService } from './delivery/connections.service';
import { DeliveryGateway } from './delivery/delivery.gateway';
import { DeviceSetsCache } from './messages/device-sets.cache';
import { MessagesController } from './messages/messages.controller';
import { RelayClient } from './messages/relay.client';
import { ReadService } from './messages/read.service';
import { SendService } from './messages/send.service';
import { OpenApiController } from './openapi/openapi.controller';

@Module({
  controllers: [AuthController, MessagesController, OpenApiController],
  providers: [AuthService, RelayClient, DeviceSetsCache, SendService, ReadService, AckClient, ConnectionsService, DeliveryGateway],
})
export class GatewayModule {}

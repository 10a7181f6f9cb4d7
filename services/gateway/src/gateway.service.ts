import { IoAdapter } from '@nestjs/platform-socket.io';
import type { ServiceDefinition } from '@umbra/server';
import { GatewayModule } from './gateway.module';

export const gatewayService: ServiceDefinition = {
  name: 'gateway',
  imports: () => [GatewayModule],
  configure: (app) => {
    app.useWebSocketAdapter(new IoAdapter(app));
  },
};

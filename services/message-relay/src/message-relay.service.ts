import type { ServiceDefinition } from '@umbra/server';
import { RelayModule } from './relay/relay.module';

export const messageRelayService: ServiceDefinition = {
  name: 'message-relay',
  imports: () => [RelayModule],
};

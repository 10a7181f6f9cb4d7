import type { ServiceDefinition } from '@umbra/server';
import { SweepModule } from './sweep/sweep.module';

export const expiryWorkerService: ServiceDefinition = {
  name: 'expiry-worker',
  imports: () => [SweepModule],
};

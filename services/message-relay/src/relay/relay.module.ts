import { Module } from '@nestjs/common';
import { CountingWakeupNotifier, Metrics, WakeupNotifier } from '@umbra/server';
import { RelayProcessor } from './relay.processor';

/** A push provider replaces the WakeupNotifier here (docs/operations.md, "Wake-ups"). */
@Module({
  providers: [RelayProcessor, { provide: WakeupNotifier, inject: [Metrics], useFactory: (m: Metrics) => new CountingWakeupNotifier(m) }],
})
export class RelayModule {}

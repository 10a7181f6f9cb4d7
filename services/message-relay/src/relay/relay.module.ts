import { Module } from '@nestjs/common';
import { RelayProcessor } from './relay.processor';

@Module({ providers: [RelayProcessor] })
export class RelayModule {}

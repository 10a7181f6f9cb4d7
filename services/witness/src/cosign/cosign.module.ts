import { Module } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { CosignController } from './cosign.controller';
import { CosignService } from './cosign.service';
import { WitnessStateRepository } from './witness-state.repository';

@Module({
  controllers: [CosignController],
  providers: [CosignService, { provide: WitnessStateRepository, inject: [DataSource], useFactory: (ds: DataSource) => new WitnessStateRepository(ds) }],
})
export class CosignModule {}

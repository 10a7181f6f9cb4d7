import { Module } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { APP_CONFIG, type AppConfig } from '@umbra/server';
import { KT_KEYS, ktKeysFrom } from './kt-keys';
import { KtController } from './kt.controller';
import { KtProofsService } from './kt-proofs.service';
import { KtRepository } from './kt.repository';
import { KtSequencerService } from './kt-sequencer.service';
import { KtService } from './kt.service';

/** The key-transparency log of PROTOCOL.md §12 (docs/key-transparency.md). */
@Module({
  controllers: [KtController],
  providers: [
    { provide: KT_KEYS, inject: [APP_CONFIG], useFactory: (c: AppConfig) => ktKeysFrom(c) },
    { provide: KtRepository, inject: [DataSource], useFactory: (ds: DataSource) => new KtRepository(ds) },
    KtProofsService,
    KtSequencerService,
    KtService,
  ],
  exports: [KtSequencerService, KtService],
})
export class KtModule {}

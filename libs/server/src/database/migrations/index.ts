import { Init1764000000000 } from './1764000000000-Init';
import { Prekeys1764000100000 } from './1764000100000-Prekeys';
import { Vanishing1764000200000 } from './1764000200000-Vanishing';
import { Attachments1764000300000 } from './1764000300000-Attachments';
import { DeviceQueues1764000410000 } from './1764000410000-DeviceQueues';
import { WitnessState1764000600000 } from './1764000600000-WitnessState';
import { KeyTransparency1764000700000 } from './1764000700000-KeyTransparency';
import { DEFAULT_ENVELOPE_PARTITIONS, envelopePartitionsMigration } from './1764000800000-EnvelopePartitions';
import { QueueCountsUpperBound1764000900000 } from './1764000900000-QueueCountsUpperBound';
import { AckByPrimaryKey1764001000000 } from './1764001000000-AckByPrimaryKey';

export { DEFAULT_ENVELOPE_PARTITIONS, MAX_ENVELOPE_PARTITIONS } from './1764000800000-EnvelopePartitions';

/** What a migration run takes from the config (ENVELOPE_PARTITIONS). */
export interface MigrationOptions {
  envelopePartitions?: number;
}

/** Every migration, in order. New ones are appended here. */
export function migrationsFor(opts: MigrationOptions = {}) {
  return [
    Init1764000000000, Prekeys1764000100000, Vanishing1764000200000, Attachments1764000300000, DeviceQueues1764000410000, WitnessState1764000600000, KeyTransparency1764000700000,
    envelopePartitionsMigration(opts.envelopePartitions ?? DEFAULT_ENVELOPE_PARTITIONS),
    QueueCountsUpperBound1764000900000,
    AckByPrimaryKey1764001000000,
  ];
}

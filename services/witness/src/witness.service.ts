import type { ServiceDefinition } from '@umbra/server';
import { CosignModule } from './cosign/cosign.module';

/**
 * `umbra-witness` (PROTOCOL.md §12): cosigns a key-transparency log's tree heads after checking that
 * each extends the last one it cosigned, and refuses (and reports) a fork. One log per witness
 * (WITNESS_LOG_PUBLIC_KEY); its state is the `witness_state` table of its own DATABASE_URL.
 */
export const witnessService: ServiceDefinition = {
  name: 'witness',
  imports: () => [CosignModule],
};

import type { ServiceDefinition } from '@umbra/server';
import { AccountsModule } from './accounts/accounts.module';
import { KeysModule } from './keys/keys.module';
import { KtModule } from './kt/kt.module';
import { ProvisioningModule } from './provisioning/provisioning.module';

export const keyDirectoryService: ServiceDefinition = {
  name: 'key-directory',
  imports: () => [AccountsModule, KeysModule, ProvisioningModule, KtModule],
};

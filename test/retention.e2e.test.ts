import { ManualClock } from '@umbra/server';
import { SweepService } from '../services/expiry-worker/src/sweep/sweep.service';
import { TestStack } from './support/harness';
import { registeredClient, toDevice } from './support/clients';

describe('maximum retention of undelivered envelopes', () => {
  it('drops envelopes older than MAX_RETENTION_S: never delivered, then swept', async () => {
    const clock = new ManualClock(Date.now());
    const stack = await TestStack.start({ instances: { 'expiry-worker': 1 }, env: { MAX_RETENTION_S: '3600', SWEEP_INTERVAL_MS: '3600000' }, overrides: { clock } });
    try {
      const alice = await registeredClient(stack.origin);
      const bob = await registeredClient(stack.origin);
      await alice.client.api('POST', '/v1/messages', { clientMessageId: Buffer.alloc(16, 1).toString('base64url'), recipients: [toDevice(bob)] });
      expect((await bob.client.fetchMessages()).messages).toHaveLength(1);

      clock.advance(3600_000 + 1);
      expect((await bob.client.fetchMessages()).messages).toHaveLength(0);
      const swept = await stack.of('expiry-worker')[0]!.svc.app.get(SweepService).sweep();
      expect(swept.envelopes).toBeGreaterThanOrEqual(1);
      expect(swept.sends).toBeGreaterThanOrEqual(1);
      await alice.client.close();
      await bob.client.close();
    } finally {
      await stack.stop();
    }
  });
});

import { QueueRegistry } from './queue.registry';
import { Jobs, QUEUE_JOBS, Queues } from './queues';

describe('QueueRegistry.worker', () => {
  const registry = new QueueRegistry('redis://127.0.0.1:1', 'spec');

  it('refuses a worker that does not handle exactly its queue\'s jobs, before connecting', () => {
    // @ts-expect-error a handler is missing: the type says so as well
    expect(() => registry.worker(Queues.expiry, {})).toThrow('queue expiry: handlers for [], its jobs are [expire-message]');
    const extra = { [Jobs.relayBatch]: async () => undefined, 'relay-batch-v2': async () => undefined };
    expect(() => registry.worker(Queues.relay, extra)).toThrow('its jobs are [relay-batch]');
  });

  it('names every job of Jobs in exactly one queue', () => {
    const named = Object.values(QUEUE_JOBS).flat().sort();
    expect(named).toEqual(Object.values(Jobs).sort());
  });
});

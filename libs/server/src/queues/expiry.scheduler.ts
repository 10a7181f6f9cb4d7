import { createHash } from 'node:crypto';
import type { MessageKey } from '../database/envelope-row.mapper';
import type { QueueRegistry } from './queue.registry';
import { Jobs, Queues, type ExpireMessageJob } from './queues';

/** Deterministic (so scheduling is idempotent) but opaque: Redis never names the message, even in the events stream. */
export function expireJobId(job: ExpireMessageJob): string {
  return `m${createHash('sha256').update(`${job.a}.${job.d}.${job.c}.${job.dueAt}`).digest('hex').slice(0, 40)}`;
}

export function toExpireJob(message: MessageKey, dueAt: number): ExpireMessageJob {
  return {
    a: Buffer.from(message.sender.accountId).toString('hex'),
    d: message.sender.deviceId,
    c: Buffer.from(message.clientMessageId).toString('base64url'),
    dueAt,
  };
}

export function fromExpireJob(job: ExpireMessageJob): MessageKey {
  return { sender: { accountId: Buffer.from(job.a, 'hex'), deviceId: job.d }, clientMessageId: Buffer.from(job.c, 'base64url') };
}

/**
 * Schedules the delayed `expire-message` jobs of vanishing messages. The job id is derived from the
 * message and its due time, so storing a message twice schedules it once, and a read report that lowers a
 * copy's deadline adds a second job for the earlier time. Losing these jobs delays nothing by more
 * than one sweep interval: the sweep finds the same rows from Postgres alone.
 */
export class ExpiryScheduler {
  constructor(private readonly queues: QueueRegistry) {}

  async schedule(items: { message: MessageKey; dueAt: number }[], now: number): Promise<void> {
    if (items.length === 0) return;
    const jobs = items.map(({ message, dueAt }) => {
      const data = toExpireJob(message, dueAt);
      return {
        name: Jobs.expireMessage,
        data,
        opts: { jobId: expireJobId(data), delay: Math.max(0, dueAt - now), removeOnComplete: true, removeOnFail: { count: 1000 }, attempts: 8, backoff: { type: 'exponential', delay: 500 } },
      };
    });
    for (let i = 0; i < jobs.length; i += 1000) await this.queues.queue(Queues.expiry).addBulk(jobs.slice(i, i + 1000));
  }
}

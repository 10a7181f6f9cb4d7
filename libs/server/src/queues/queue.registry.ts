import { Queue, Worker, type Job, type JobsOptions, type WorkerOptions } from 'bullmq';
import { createRedis, type Redis } from '../redis/redis';

export type JobHandlers = Record<string, (job: Job) => Promise<unknown>>;

/** BullMQ queues and workers of one process, with one prefix and shared connections. */
export class QueueRegistry {
  private readonly queues = new Map<string, Queue>();
  private readonly workers: Worker[] = [];
  private connection: Redis | undefined;

  constructor(
    private readonly redisUrl: string,
    readonly prefix: string,
  ) {}

  private shared(): Redis {
    this.connection ??= createRedis(this.redisUrl, 'blocking', 'bullmq-queues');
    return this.connection;
  }

  queue(name: string): Queue {
    let q = this.queues.get(name);
    if (!q) {
      q = new Queue(name, { connection: this.shared(), prefix: `${this.prefix}:bull` });
      q.on('error', () => undefined);
      this.queues.set(name, q);
    }
    return q;
  }

  async add(name: string, jobName: string, data: unknown, opts: JobsOptions = {}): Promise<void> {
    await this.queue(name).add(jobName, data, { removeOnComplete: true, removeOnFail: { count: 1000 }, attempts: 8, backoff: { type: 'exponential', delay: 100 }, ...opts });
  }

  /** Starts a worker; a job whose name has no handler fails loudly instead of vanishing. */
  worker(name: string, handlers: JobHandlers, opts: Partial<WorkerOptions> & { onFailed?: (job: Job | undefined, err: Error) => void; onCompleted?: (job: Job) => void } = {}): Worker {
    const { onFailed, onCompleted, ...workerOpts } = opts;
    const worker = new Worker(
      name,
      async (job: Job) => {
        const handler = handlers[job.name];
        if (!handler) throw new Error(`queue ${name}: no handler for job "${job.name}"`);
        return handler(job);
      },
      { connection: { url: this.redisUrl, maxRetriesPerRequest: null } as never, prefix: `${this.prefix}:bull`, ...workerOpts },
    );
    worker.on('error', () => undefined);
    if (onFailed) worker.on('failed', onFailed);
    if (onCompleted) worker.on('completed', onCompleted);
    this.workers.push(worker);
    return worker;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.close()));
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    this.connection?.disconnect();
  }
}

import { Queue, Worker, type Job, type JobsOptions, type WorkerOptions } from 'bullmq';
import { createRedisClient, type RedisClient, type RedisTarget } from '../redis/redis';
import { QUEUE_JOBS, type JobData, type JobName, type QueueName } from './queues';

/** How long close() waits for the workers on a cluster before dropping their connection, and again after. */
const CLUSTER_WORKER_CLOSE_MS = 5000;

function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  return Promise.race([p.then(() => true, () => true), timeout]).finally(() => clearTimeout(timer));
}

/** One handler for every job of queue Q, each given its own payload type. */
/** `token` is the worker's lock token for the job, needed by `job.moveToDelayed`. */
export type JobHandlers<Q extends QueueName> = { [J in JobName<Q>]: (job: Job<JobData<Q, J>>, token: string | undefined) => Promise<unknown> };

/** What a worker adds to BullMQ's options. */
export type WorkerHooks = Partial<WorkerOptions> & { onFailed?: (job: Job | undefined, err: Error) => void; onCompleted?: (job: Job) => void };

/**
 * BullMQ queues and workers of one process, with one prefix and shared connections. On a Redis
 * Cluster the prefix is a hash tag (`{umbra}:bull`), as BullMQ requires: its scripts touch several
 * keys of a queue at once, and those must share a slot. A single Redis keeps `umbra:bull`, so an
 * existing deployment keeps its queues.
 */
export class QueueRegistry {
  private readonly queues = new Map<string, Queue>();
  private readonly workers: Worker[] = [];
  private connection: RedisClient | undefined;
  /** Workers' connection on a cluster (BullMQ duplicates it for its blocking commands); on one Redis each worker opens its own. */
  private workerConnection: RedisClient | undefined;
  private readonly target: RedisTarget;
  readonly bullPrefix: string;

  constructor(
    target: RedisTarget | string,
    readonly prefix: string,
  ) {
    this.target = typeof target === 'string' ? { url: target } : target;
    this.bullPrefix = this.target.clusterNodes?.length ? `{${prefix}}:bull` : `${prefix}:bull`;
  }

  private shared(): RedisClient {
    this.connection ??= createRedisClient(this.target, 'producer', 'bullmq-queues');
    return this.connection;
  }

  private workerConnectionOptions(): RedisClient | { url: string; maxRetriesPerRequest: null } {
    if (!this.target.clusterNodes?.length) return { url: this.target.url, maxRetriesPerRequest: null };
    this.workerConnection ??= createRedisClient(this.target, 'blocking', 'bullmq-workers');
    return this.workerConnection;
  }

  queue(name: QueueName): Queue {
    let q = this.queues.get(name);
    if (!q) {
      q = new Queue(name, { connection: this.shared(), prefix: this.bullPrefix });
      q.on('error', () => undefined);
      this.queues.set(name, q);
    }
    return q;
  }

  async add<Q extends QueueName, J extends JobName<Q>>(name: Q, jobName: J, data: JobData<Q, J>, opts: JobsOptions = {}): Promise<void> {
    await this.queue(name).add(jobName, data, { removeOnComplete: true, removeOnFail: { count: 1000 }, attempts: 8, backoff: { type: 'exponential', delay: 100 }, ...opts });
  }

  /**
   * Starts a worker. Its handlers must be exactly the queue's jobs (QUEUE_JOBS), or it does not start;
   * a job whose name has no handler (from a newer producer) fails loudly instead of vanishing.
   */
  worker<Q extends QueueName>(name: Q, handlers: JobHandlers<Q>, opts: WorkerHooks = {}): Worker {
    const expected = [...QUEUE_JOBS[name]].sort();
    const given = Object.keys(handlers).sort();
    if (expected.join() !== given.join()) throw new Error(`queue ${name}: handlers for [${given.join(', ')}], its jobs are [${expected.join(', ')}]`);
    const byName = handlers as Record<string, (job: Job, token: string | undefined) => Promise<unknown>>;
    const { onFailed, onCompleted, ...workerOpts } = opts;
    const worker = new Worker(
      name,
      async (job: Job, token?: string) => {
        const handler = byName[job.name];
        if (!handler) throw new Error(`queue ${name}: no handler for job "${job.name}"`);
        return handler(job, token);
      },
      { connection: this.workerConnectionOptions() as never, prefix: this.bullPrefix, ...workerOpts },
    );
    worker.on('error', () => undefined);
    if (onFailed) worker.on('failed', onFailed);
    if (onCompleted) worker.on('completed', onCompleted);
    this.workers.push(worker);
    return worker;
  }

  async close(): Promise<void> {
    const closing = Promise.all(this.workers.map((w) => w.close()));
    if (this.workerConnection) {
      // After a cluster failover a worker's close has been seen waiting on a command that never
      // completes (1 run in ~9 of the heavy suite): past the bound, dropping the connection fails it.
      if (!(await settlesWithin(closing, CLUSTER_WORKER_CLOSE_MS))) this.workerConnection.disconnect();
      await settlesWithin(closing, CLUSTER_WORKER_CLOSE_MS);
    } else await closing;
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    this.connection?.disconnect();
    this.workerConnection?.disconnect();
  }
}

import type { Job } from 'bullmq';
import type { Logger } from '../logging/logger';
import type { Metrics } from '../metrics/metrics';

/** The failure and completion hooks every worker uses: metrics and one warning per failed attempt. */
export function jobHooks(queue: string, metrics: Metrics, logger: Logger) {
  return {
    onFailed: (job: Job | undefined, err: Error) => {
      metrics.jobFailures.inc({ queue });
      logger.warn({ queue, jobId: job?.id, attempt: job?.attemptsMade, err: err.message }, 'job attempt failed');
    },
    onCompleted: () => metrics.jobsProcessed.inc({ queue }),
  };
}

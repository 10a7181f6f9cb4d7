/**
 * BullMQ queues, their job names and each job's payload: the one definition producers and workers
 * share. `QueueRegistry.add` takes only a job name of the queue and that job's payload type, and a
 * worker must handle every job of its queue (checked when it starts).
 */
export const Queues = {
  relay: 'relay',
  ack: 'ack',
  expiry: 'expiry',
} as const;

export const Jobs = {
  relayBatch: 'relay-batch',
  ackBatch: 'ack-batch',
  expireMessage: 'expire-message',
} as const;

export type QueueName = (typeof Queues)[keyof typeof Queues];

/** queue → job name → payload. */
export interface QueueJobs {
  relay: { 'relay-batch': RelayBatchJob };
  /** Only drained: gateways of the previous version enqueued acks here; gateways now delete acked rows themselves. */
  ack: { 'ack-batch': AckBatchJob };
  expiry: { 'expire-message': ExpireMessageJob };
}

export type JobName<Q extends QueueName> = keyof QueueJobs[Q] & string;
export type JobData<Q extends QueueName, J extends JobName<Q>> = QueueJobs[Q][J];

/** The job names of each queue at run time (the type above says the same at compile time). */
export const QUEUE_JOBS: { [Q in QueueName]: readonly JobName<Q>[] } = {
  relay: [Jobs.relayBatch],
  ack: [Jobs.ackBatch],
  expiry: [Jobs.expireMessage],
};

export interface RelaySend {
  requestId: string;
  /** hex account id and device id of the authenticated sender */
  senderAccount: string;
  senderDevice: number;
  clientMessageId: string;
  expiresAt: number;
  readTtlS: number;
  attachments?: string[];
  /** Present and true only for an urgent send: recipient devices without a socket are woken (WakeupNotifier). */
  urgent?: true;
  recipients: { account: string; deviceId: number; type: number; content: string }[];
}

export interface RelayBatchJob {
  gatewayId: string;
  sends: RelaySend[];
}

export interface AckBatchJob {
  /** hex account, device id and envelope ids (decimal strings) of each acking device; the relay drops invalid items alone. */
  items: { account: string; deviceId: number; seqs: string[] }[];
}

/** Expire one vanishing message at `dueAt` (delayed job; id from expireJobId()). The job's data is deleted when it completes. */
export interface ExpireMessageJob {
  /** hex sender account */
  a: string;
  /** sender device */
  d: number;
  /** base64url clientMessageId */
  c: string;
  dueAt: number;
}

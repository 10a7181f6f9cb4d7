/** BullMQ queue and job names, and their payloads: the one definition producers and workers share. */
export const Queues = {
  relay: 'relay',
  ack: 'ack',
  expiry: 'expiry',
} as const;

export const Jobs = {
  relayBatch: 'relay-batch',
  ackBatch: 'ack-batch',
  sweep: 'sweep',
  expireMessage: 'expire-message',
} as const;

export interface RelaySend {
  requestId: string;
  /** hex account id and device id of the authenticated sender */
  senderAccount: string;
  senderDevice: number;
  clientMessageId: string;
  expiresAt: number;
  readTtlS: number;
  attachments?: string[];
  recipients: { account: string; deviceId: number; type: number; content: string }[];
}

export interface RelayBatchJob {
  gatewayId: string;
  sends: RelaySend[];
}

export interface AckBatchJob {
  items: { account: string; deviceId: number; seqs: number[] }[];
}

export type SweepJob = Record<string, never>;

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

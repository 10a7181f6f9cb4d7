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
} as const;

export interface RelaySend {
  requestId: string;
  /** hex account id and device id of the authenticated sender */
  senderAccount: string;
  senderDevice: number;
  clientMessageId: string;
  expiresAt: number;
  readTtlS: number;
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

import type { DeliveredEnvelope, ErrorCode, ExpiredMessageRef, SendResult } from '@umbra/protocol';

/**
 * Every pub/sub channel and its payload. Services publish and subscribe only through these.
 * Pub/sub carries notifications; nothing in it is the only copy of anything stored.
 */
export const Channels = {
  /** One per gateway instance: envelopes for sockets it holds, and "stored" answers for its senders. */
  deliver: (prefix: string, gatewayId: string) => `${prefix}:deliver:${gatewayId}`,
  /** Broadcast: an account's device list changed (gateways drop revoked sockets and cached device sets). */
  devicesChanged: (prefix: string) => `${prefix}:devices-changed`,
  /** Broadcast: a device's one-time prekeys run low (the gateway holding its socket tells it). */
  keysLow: (prefix: string) => `${prefix}:keys-low`,
} as const;

export interface KeysLowMessage {
  /** deviceKey() of the device whose keys run low */
  device: string;
  oneTimePreKeys: number;
  oneTimeKemPreKeys: number;
}

export interface DeliverItem {
  /** deviceKey() of the recipient */
  to: string;
  envelope: DeliveredEnvelope;
}

export type StoredOutcome = { ok: true; result: SendResult } | { ok: false; code: ErrorCode; message: string };

export type GatewayMessage =
  | { kind: 'deliver'; items: DeliverItem[] }
  | { kind: 'stored'; results: { requestId: string; outcome: StoredOutcome }[] }
  | { kind: 'expired'; items: ExpiredItem[] };

/** Envelopes of one connected device deleted by expiry, and the messages they belonged to. */
export interface ExpiredItem {
  /** deviceKey() of the recipient */
  to: string;
  ids: string[];
  messages: ExpiredMessageRef[];
}

export interface DevicesChangedMessage {
  /** hex account id */
  account: string;
  listVersion: number;
  removed: number[];
  added: number[];
}

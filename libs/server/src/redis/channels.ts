import type { DeliveredEnvelope, ErrorCode, ExpiredMessageRef, SendResult, TypingRequest } from '@umbra/protocol';

type TypingState = TypingRequest['state'];

declare const payloadType: unique symbol;

/** A pub/sub channel name that carries payloads of type T: the Bus publishes only a T on it and hands its subscribers a T (invariant in T). */
export type Channel<T> = string & { readonly [payloadType]: (payload: T) => T };

/** A channel outside Channels (the Bus's own tests); services use Channels. */
export function channelOf<T>(name: string): Channel<T> {
  return name as Channel<T>;
}

/**
 * Every pub/sub channel and its payload. Services publish and subscribe only through these.
 * Pub/sub carries notifications; nothing in it is the only copy of anything stored.
 */
export const Channels = {
  /** One per gateway instance: envelopes for sockets it holds, and "stored" answers for its senders. */
  deliver: (prefix: string, gatewayId: string) => channelOf<GatewayMessage>(`${prefix}:deliver:${gatewayId}`),
  /** Broadcast: an account's device list changed (gateways drop revoked sockets and cached device sets). */
  devicesChanged: (prefix: string) => channelOf<DevicesChangedMessage>(`${prefix}:devices-changed`),
  /** Broadcast: a device's one-time prekeys run low (the gateway holding its socket tells it). */
  keysLow: (prefix: string) => channelOf<KeysLowMessage>(`${prefix}:keys-low`),
} as const;

/** One message for publishMany, checked against its channel's payload type. */
export interface Publication<T> {
  channel: Channel<T>;
  message: T;
}

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
  /** `items`: deliveries for this same gateway, carried along with the sends' outcomes (one publish, one wake-up). */
  | { kind: 'stored'; results: { requestId: string; outcome: StoredOutcome }[]; items?: DeliverItem[] }
  | { kind: 'expired'; items: ExpiredItem[] }
  | { kind: 'recalled'; items: ExpiredItem[] }
  | { kind: 'typing'; items: TypingItem[] };

/** A typing indicator for one connected device (never stored). */
export interface TypingItem {
  /** deviceKey() of the recipient */
  to: string;
  /** account id text of the typing account */
  from: string;
  fromDeviceId: number;
  state: TypingState;
  /** The group the typing is in (opaque, relayed as the typing device sent it). */
  gid?: string;
}

/** Envelopes of one connected device deleted by expiry (or recalled by their sender), and the messages they belonged to. */
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

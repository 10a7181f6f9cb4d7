import { z } from 'zod';
import {
  AckRequestSchema,
  AckResultSchema,
  AccountIdSchema,
  DeliveredEnvelopeSchema,
  ExpiredMessageRefSchema,
  ReadRequestSchema,
  ReadResultSchema,
  SendRequestSchema,
  SendResultSchema,
  TYPING_STATES,
  TypingRequestSchema,
  TypingResultSchema,
} from './schemas';
import type { ErrorCode } from './errors';
import { LIMITS } from './limits';

/** socket.io mount point on the public origin (websocket transport only). */
export const WS_PATH = '/v1/ws';

/** Acknowledgement of every client → server event that takes a callback. */
export type WsAck<T> = { ok: true; data: T } | { ok: false; error: { code: ErrorCode; message: string; details?: unknown } };

export const ClientEvent = { Send: 'send', Ack: 'ack', Read: 'read', Typing: 'typing' } as const;
export const ServerEvent = {
  Messages: 'messages',
  QueueEmpty: 'queue-empty',
  DevicesChanged: 'devices-changed',
  Revoked: 'revoked',
  KeysLow: 'keys-low',
  Expired: 'expired',
  Recalled: 'recalled',
  Typing: 'typing',
} as const;

export const MessagesEventSchema = z.object({ messages: z.array(DeliveredEnvelopeSchema) });
export const QueueEmptyEventSchema = z.object({});
export const DevicesChangedEventSchema = z.object({ accountId: AccountIdSchema, listVersion: z.number().int() });
export const KeysLowEventSchema = z.object({ oneTimePreKeys: z.number().int(), oneTimeKemPreKeys: z.number().int() });
export const ExpiredEventSchema = z.object({
  ids: z.array(z.string()).meta({ description: 'envelope ids of this device that expired before it acknowledged them' }),
  messages: z.array(ExpiredMessageRefSchema).meta({ description: 'the messages they belonged to: delete any local copy' }),
});
export type ExpiredEvent = z.infer<typeof ExpiredEventSchema>;
export const RecalledEventSchema = z.object({
  ids: z.array(z.string()).meta({ description: 'envelope ids of this device that their sender recalled before the device acknowledged them' }),
  messages: z.array(ExpiredMessageRefSchema).meta({ description: 'the messages they belonged to: drop them, unread and unshown' }),
});
export type RecalledEvent = z.infer<typeof RecalledEventSchema>;
export const TypingEventSchema = z.object({
  from: AccountIdSchema,
  fromDeviceId: z.number().int(),
  state: z.enum(TYPING_STATES),
  gid: z.string().optional().meta({ format: 'base64url', description: 'the group the typing is in, as the typing device sent it; absent in a 1:1 conversation' }),
});
export type TypingEvent = z.infer<typeof TypingEventSchema>;
export const RevokedEventSchema = z.object({ reason: z.enum(['device_removed', 'token_expired']) });

export interface ClientToServerEvents {
  [ClientEvent.Send]: (payload: z.infer<typeof SendRequestSchema>, ack: (res: WsAck<z.infer<typeof SendResultSchema>>) => void) => void;
  [ClientEvent.Ack]: (payload: z.infer<typeof AckRequestSchema>, ack?: (res: WsAck<z.infer<typeof AckResultSchema>>) => void) => void;
  [ClientEvent.Read]: (payload: z.infer<typeof ReadRequestSchema>, ack?: (res: WsAck<z.infer<typeof ReadResultSchema>>) => void) => void;
  [ClientEvent.Typing]: (payload: z.infer<typeof TypingRequestSchema>, ack: (res: WsAck<z.infer<typeof TypingResultSchema>>) => void) => void;
}

export interface ServerToClientEvents {
  [ServerEvent.Messages]: (payload: z.infer<typeof MessagesEventSchema>) => void;
  [ServerEvent.QueueEmpty]: (payload: z.infer<typeof QueueEmptyEventSchema>) => void;
  [ServerEvent.DevicesChanged]: (payload: z.infer<typeof DevicesChangedEventSchema>) => void;
  [ServerEvent.Revoked]: (payload: z.infer<typeof RevokedEventSchema>) => void;
  [ServerEvent.KeysLow]: (payload: z.infer<typeof KeysLowEventSchema>) => void;
  [ServerEvent.Expired]: (payload: z.infer<typeof ExpiredEventSchema>) => void;
  [ServerEvent.Recalled]: (payload: z.infer<typeof RecalledEventSchema>) => void;
  [ServerEvent.Typing]: (payload: z.infer<typeof TypingEventSchema>) => void;
}

export interface WsEventDoc {
  name: string;
  direction: 'client→server' | 'server→client';
  summary: string;
  payload: z.ZodType;
  ack?: z.ZodType;
  errors?: ErrorCode[];
}

/** Every WebSocket event; docs/websocket.md is generated from this table. */
export const WS_EVENTS: WsEventDoc[] = [
  {
    name: ClientEvent.Send,
    direction: 'client→server',
    summary:
      'Send one message: one opaque envelope per recipient device. Acknowledged once every envelope is stored in Postgres. ' +
      'Idempotent on (sender device, clientMessageId). The device set per recipient account must equal its current device list ' +
      '(for the sender\'s own account: all devices but the sender), else DEVICE_MISMATCH with details {missing, extra}. ' +
      'One per-device send limit covers socket and REST sends (RATE_LIMITED, details.retryAfterS); QUEUE_FULL when a recipient device ' +
      'holds its most undelivered envelopes or bytes (nothing of the send is stored); DEVICE_NOT_IN_LIST once the sending device was removed.',
    payload: SendRequestSchema,
    ack: SendResultSchema,
    errors: ['VALIDATION_FAILED', 'BAD_ENCODING', 'ENVELOPE_TOO_LARGE', 'TOO_MANY_RECIPIENTS', 'PAYLOAD_TOO_LARGE', 'DUPLICATE_RECIPIENT', 'ALREADY_EXPIRED', 'ACCOUNT_NOT_FOUND', 'DEVICE_MISMATCH', 'DEVICE_NOT_IN_LIST', 'RATE_LIMITED', 'QUEUE_FULL', 'UNAVAILABLE'],
  },
  {
    name: ClientEvent.Ack,
    direction: 'client→server',
    summary:
      'Acknowledge received envelopes by id; they leave the delivery window at once so more can be pushed, and the server deletes them within 20 ms (a reconnect sooner may see them again). Ids of other devices are ignored. ' +
      `At most ${LIMITS.MAX_ACK_IDS} ids per event and ${LIMITS.SOCKET_ACK_EVENTS_PER_SECOND} events per second per connection (burst 2×); a refused ack deletes nothing and its envelopes are pushed again later.`,
    payload: AckRequestSchema,
    ack: AckResultSchema,
    errors: ['VALIDATION_FAILED', 'RATE_LIMITED'],
  },
  {
    name: ClientEvent.Read,
    direction: 'client→server',
    summary: 'Read report (PROTOCOL.md §8): this device displayed these envelopes; read-mode copies still stored now vanish readTtlS seconds from now (never later than their expiresAt).',
    payload: ReadRequestSchema,
    ack: ReadResultSchema,
    errors: ['VALIDATION_FAILED', 'RATE_LIMITED', 'UNAVAILABLE'],
  },
  {
    name: ClientEvent.Typing,
    direction: 'client→server',
    summary:
      'Typing indicator, live only: the connected devices of account `to` get a `typing` event now; nothing is stored, and devices that are offline get nothing, ever. ' +
      'Not end-to-end encrypted: the server sees who types to whom (it already sees who sends to whom) and the state, no content. ' +
      'With `gid` the event is about a group: the client sends one per member account, and the server relays the id without knowing the group. ' +
      `At most ${LIMITS.SOCKET_TYPING_EVENTS_PER_SECOND} events per second per connection (burst 2×); a refused one is dropped.`,
    payload: TypingRequestSchema,
    ack: TypingResultSchema,
    errors: ['VALIDATION_FAILED', 'BAD_ENCODING', 'ACCOUNT_NOT_FOUND', 'RATE_LIMITED', 'UNAVAILABLE'],
  },
  {
    name: ServerEvent.Messages,
    direction: 'server→client',
    summary:
      'Envelopes for this device, in server order: live pushes and drain pages alike. Ack each one after it is safely stored. ' +
      `At most ${LIMITS.DELIVERY_WINDOW_MESSAGES} envelopes and ${LIMITS.DELIVERY_WINDOW_BYTES} bytes are pushed and not yet acknowledged at any time (one envelope always fits); ` +
      'the rest wait in the queue and come as acks make room. The same envelope may come twice (drop it by clientMessageId and sender, ack it again).',
    payload: MessagesEventSchema,
  },
  {
    name: ServerEvent.QueueEmpty,
    direction: 'server→client',
    summary: 'Sent once after connecting, when every envelope queued while the device was offline has been pushed.',
    payload: QueueEmptyEventSchema,
  },
  {
    name: ServerEvent.DevicesChanged,
    direction: 'server→client',
    summary: "This account's device list changed; refetch and verify it.",
    payload: DevicesChangedEventSchema,
  },
  {
    name: ServerEvent.Revoked,
    direction: 'server→client',
    summary: 'This device was removed from its account (or its token expired); the server disconnects right after.',
    payload: RevokedEventSchema,
  },
  {
    name: ServerEvent.KeysLow,
    direction: 'server→client',
    summary: `Fewer than ${LIMITS.PREKEY_LOW_THRESHOLD} one-time prekeys (EC or KEM) of this device are left; upload more (PUT /v1/keys).`,
    payload: KeysLowEventSchema,
  },
  {
    name: ServerEvent.Expired,
    direction: 'server→client',
    summary:
      'Envelopes of this device were deleted because their message vanished (its timer passed) before the device acknowledged them. ' +
      'Delete any local copy of these messages. The sender of a message that expired before any device of an account received it gets ' +
      'an expiry receipt: an envelope of type 5 (no sender) whose content is the UTF-8 JSON {k:"expired", clientMessageId, expiresAt, accountIds}.',
    payload: ExpiredEventSchema,
  },
  {
    name: ServerEvent.Recalled,
    direction: 'server→client',
    summary:
      'Envelopes pushed to this device and not acknowledged yet were deleted because their sender recalled the send (POST /v1/messages/recall). ' +
      'Drop them: do not decrypt, show or acknowledge them (an ack of a deleted id is ignored).',
    payload: RecalledEventSchema,
  },
  {
    name: ServerEvent.Typing,
    direction: 'server→client',
    summary: 'A device of account `from` started or stopped typing to this account (live only; see the `typing` client event), in group `gid` when present. Clients should let `started` lapse after a few seconds without a repeat.',
    payload: TypingEventSchema,
  },
];

/**
 * Handshake: `io(origin, { path: WS_PATH, transports: ['websocket'], auth: { token } })`.
 * A missing, unknown, expired or revoked token fails the connection with `connect_error`
 * whose `message` is the error code and `data` the error body.
 */
export const WS_HANDSHAKE_ERRORS: ErrorCode[] = ['UNAUTHENTICATED', 'TOKEN_INVALID', 'TOKEN_EXPIRED'];

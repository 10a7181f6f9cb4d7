import type { DeliveredEnvelope, ExpiredEvent, RecalledEvent, TypingEvent } from '@umbra/protocol';
import type { KtAlert } from '../kt/kt.client';

/**
 * Handles one received envelope. Resolving means its result is durably stored: the envelope is then
 * acknowledged (the server deletes it). Throwing leaves it queued; it is delivered again later.
 */
export type MessageHandler = (envelope: DeliveredEnvelope) => void | Promise<void>;

/** The listeners of UmbraClient's events, one set per event, shared by the client's parts. */
export function createClientHandlers() {
  return {
    message: new Set<MessageHandler>(),
    queueEmpty: new Set<() => void>(),
    devicesChanged: new Set<(v: number) => void>(),
    revoked: new Set<(reason: string) => void>(),
    connection: new Set<(connected: boolean) => void>(),
    expired: new Set<(ev: ExpiredEvent) => void | Promise<void>>(),
    recalled: new Set<(ev: RecalledEvent) => void | Promise<void>>(),
    typing: new Set<(ev: TypingEvent) => void>(),
    receiveError: new Set<(err: unknown, envelope: DeliveredEnvelope) => void>(),
    'kt-alert': new Set<(alert: KtAlert) => void>(),
    'kt-warning': new Set<(message: string) => void>(),
  };
}

export type ClientHandlers = ReturnType<typeof createClientHandlers>;

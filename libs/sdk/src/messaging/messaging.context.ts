import { b64uEncode, randomBytes, type Content } from '@umbra/crypto';
import type { SendResult } from '@umbra/protocol';
import type { UmbraClient } from '../client';
import { History } from '../history';
import type { Mutex } from '../mutex';
import type { KeyValueStore } from '../store';
import type { MessengerEvents } from './messenger.events';

/** What every part of the Messenger shares: the client, the store, the clock, the history, the events. */
export interface MessagingContext {
  readonly client: UmbraClient;
  readonly store: KeyValueStore;
  readonly now: () => number;
  readonly history: History;
  readonly events: MessengerEvents;
  /** Runs session-state changes one at a time: a send's encryption, a receive's decryption. */
  readonly lock: Mutex;
}

/** A new random Content.id (or clientMessageId). */
export function newId(): string {
  return b64uEncode(randomBytes(16));
}

/** Keeps a message this device sent in the history, under the deadline its timer gives it. */
export async function recordOutgoing(ctx: MessagingContext, conv: string, content: Content, result: SendResult): Promise<void> {
  const me = ctx.client.identity;
  await ctx.history.add({
    conv, id: content.id, from: me.accountIdText, fromDevice: me.device.deviceId, outgoing: true,
    content, serverTimestamp: result.serverTimestamp, receivedAt: ctx.now(), deleteAt: History.deadline(content, result.serverTimestamp, ctx.now(), true),
    envelope: `${me.accountIdText}:${me.device.deviceId}:${result.clientMessageId}`,
  });
}

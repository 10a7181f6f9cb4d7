import type { ExpiredMessageRef, ExpiryReceipt, TypingEvent } from '@umbra/protocol';
import type { CallState, EndReason, Media } from '../calls';
import type { IdentityChange } from '../contacts';
import type { Timer } from '../history';
import type { KtAlert } from '../kt/kt.client';
import type { ReceivedMessage } from '../messenger';
import type { Receipt } from '../receipts';

/** Content kinds that change an earlier message instead of being one. */
export type UpdateKind = 'react' | 'edit' | 'del';

/** A message that vanished: `conv`/`id` when this device had it, `envelope` when the servers named it. */
export interface VanishedMessage {
  conv?: string;
  id?: string;
  envelope?: ExpiredMessageRef;
}

/** Everything an Umbra instance tells the application, as one discriminated union on `type`. */
export type UmbraEvent =
  /** A new message (text, file) from another account or, `message.sync`, from another of our devices; already in the history. */
  | { type: 'message'; conv: string; message: ReceivedMessage }
  /** A reaction, edit or delete-for-everyone of message `target`, already applied to the history. */
  | { type: 'update'; conv: string; kind: UpdateKind; target: string; from: string; message: ReceivedMessage }
  /**
   * Messages whose vanishing timer ran out, now deleted from this device: `by: 'timer'` this
   * device's own deadline, `by: 'server'` the servers deleted copies this device had not acknowledged.
   */
  | { type: 'expired'; by: 'timer' | 'server'; messages: VanishedMessage[] }
  /** Messages their sender recalled before this device received them. */
  | { type: 'recalled'; messages: VanishedMessage[] }
  /** A device of `from` started or stopped typing in `conv` (the peer for 1:1, the group id for a group it is a member of); live only, never stored. */
  | { type: 'typing'; from: string; device: number; state: TypingEvent['state']; conv: string }
  /** A group's members or name changed (its admin's state message, already stored): `groups.get(gid)` has the new state. */
  | { type: 'group'; gid: string; from: string }
  /** A handle this device knew now names another account (`contacts.changes`); "verified" was cleared for both. */
  | { type: 'identity-change'; change: IdentityChange }
  /** A conversation's vanishing timer changed: set here, by the peer, or adopted from a message. */
  | { type: 'timer'; conv: string; timer: Timer | null }
  /** Account `from` received (or displayed) our messages `ids`; already noted on their history entries (`receipts`). */
  | { type: 'receipt'; kind: 'delivered' | 'read'; conv: string; from: string; ids: string[]; at: number }
  /** One of our messages vanished before any device of `accountIds` received it. */
  | { type: 'receipt'; kind: 'expired-unread'; clientMessageId: string; accountIds: string[]; expiresAt: number }
  /**
   * A call changed state on this device: `ringing` (incoming), `outgoing`, `connecting`, `connected`,
   * then `ended` once, with `reason` (hangup, remote_hangup, declined, missed, busy, answered_elsewhere, failed…).
   */
  | { type: 'call'; callId: string; peer: string; state: CallState; reason?: EndReason; media: Media; direction: 'incoming' | 'outgoing' }
  /** The socket came up or went down (it reconnects by itself), or this device was removed from its account. */
  | { type: 'connection'; state: 'connected' | 'disconnected' | 'revoked'; reason?: string }
  /** An account's device list changed (a device was linked or removed). */
  | { type: 'devices'; listVersion: number }
  /** The key-transparency log shows something about this account its devices did not do. */
  | { type: 'kt-alert'; alert: KtAlert }
  /** Key transparency runs on trust-on-first-use pins (no `kt` option was given). */
  | { type: 'kt-warning'; message: string }
  /**
   * `receive`: an envelope could not be decrypted or stored (a storage failure leaves it queued; it
   * comes again). `handler`: one of the application's event handlers threw.
   */
  | { type: 'error'; source: 'receive' | 'handler'; error: unknown; envelopeId?: string };

export type UmbraEventType = UmbraEvent['type'];
export type UmbraEventOf<T extends UmbraEventType> = Extract<UmbraEvent, { type: T }>;
export type UmbraEventHandler<T extends UmbraEventType> = (event: UmbraEventOf<T>) => void | Promise<void>;

const UPDATE_KINDS: ReadonlySet<string> = new Set<UpdateKind>(['react', 'edit', 'del']);
/** Kinds a person sees as a message of their own; the rest (group state, receipts, call signalling…) is control. */
const MESSAGE_KINDS: ReadonlySet<string> = new Set(['text', 'att']);

/** The event for a message the Messenger handed on: a new message, an update of an earlier one, or nothing to show. */
export function receivedEvent(m: ReceivedMessage): UmbraEventOf<'message'> | UmbraEventOf<'update'> | undefined {
  const conv = m.conv;
  const c = m.content;
  if (!conv) return undefined;
  if (MESSAGE_KINDS.has(c.k)) return { type: 'message', conv, message: m };
  if (UPDATE_KINDS.has(c.k) && typeof c.target === 'string') return { type: 'update', conv, kind: c.k as UpdateKind, target: c.target, from: m.from, message: m };
  return undefined;
}

/** The event for a group state message the Messenger applied, or undefined for anything else. */
export function groupEvent(m: ReceivedMessage): UmbraEventOf<'group'> | undefined {
  const gid = m.content.gid;
  return m.content.k === 'grp' && typeof gid === 'string' ? { type: 'group', gid, from: m.from } : undefined;
}

export function typingEvent(ev: TypingEvent, conv: string = ev.from): UmbraEventOf<'typing'> {
  return { type: 'typing', from: ev.from, device: ev.fromDeviceId, state: ev.state, conv };
}

export function receiptEvent(r: ExpiryReceipt | Receipt): UmbraEventOf<'receipt'> {
  if ('k' in r) return { type: 'receipt', kind: 'expired-unread', clientMessageId: r.clientMessageId, accountIds: r.accountIds, expiresAt: r.expiresAt };
  return { type: 'receipt', kind: r.kind, conv: r.conv, from: r.from, ids: r.ids, at: r.at };
}

/** The "sender:device:clientMessageId" key the history indexes envelopes by. */
export function envelopeKey(ref: ExpiredMessageRef): string {
  return `${ref.senderAccountId}:${ref.senderDeviceId}:${ref.clientMessageId}`;
}

/**
 * One typed event stream. A handler that throws (or rejects) does not stop the others; it becomes
 * an `error` event with source `handler` (one thrown by an `error` handler is dropped, so it cannot loop).
 */
export class UmbraEvents {
  private readonly handlers = new Map<UmbraEventType, Set<(e: UmbraEvent) => void | Promise<void>>>();
  private readonly any = new Set<(e: UmbraEvent) => void | Promise<void>>();

  /** Calls `handler` for every event of this type; returns the function that stops it. */
  on<T extends UmbraEventType>(type: T, handler: UmbraEventHandler<T>): () => void {
    let set = this.handlers.get(type);
    if (!set) this.handlers.set(type, (set = new Set()));
    const h = handler as (e: UmbraEvent) => void | Promise<void>;
    set.add(h);
    return () => void set.delete(h);
  }

  /** Calls `handler` once, for the next event of this type. */
  once<T extends UmbraEventType>(type: T, handler: UmbraEventHandler<T>): () => void {
    const off = this.on(type, (e) => {
      off();
      return handler(e);
    });
    return off;
  }

  /** Every event, whatever its type (a log, a store of UI state). */
  onAny(handler: (event: UmbraEvent) => void | Promise<void>): () => void {
    this.any.add(handler);
    return () => void this.any.delete(handler);
  }

  /** The next event of this type, as a promise (rejects after `timeoutMs`, when given). */
  next<T extends UmbraEventType>(type: T, filter: (e: UmbraEventOf<T>) => boolean = () => true, timeoutMs?: number): Promise<UmbraEventOf<T>> {
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const off = this.on(type, (e) => {
        if (!filter(e)) return;
        off();
        if (timer) clearTimeout(timer);
        resolve(e);
      });
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          off();
          reject(new Error(`no ${type} event within ${timeoutMs} ms`));
        }, timeoutMs);
      }
    });
  }

  emit(event: UmbraEvent): void {
    for (const h of [...(this.handlers.get(event.type) ?? []), ...this.any]) {
      try {
        const r = h(event);
        if (r instanceof Promise) r.catch((err: unknown) => this.handlerFailed(event, err));
      } catch (err) {
        this.handlerFailed(event, err);
      }
    }
  }

  clear(): void {
    this.handlers.clear();
    this.any.clear();
  }

  private handlerFailed(event: UmbraEvent, error: unknown): void {
    if (event.type !== 'error') this.emit({ type: 'error', source: 'handler', error });
  }
}

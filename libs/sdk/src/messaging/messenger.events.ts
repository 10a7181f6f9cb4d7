import type { DeliveredEnvelope, ExpiryReceipt } from '@umbra/protocol';
import type { Timer } from '../history';
import type { ReceivedMessage, RetryRequest } from './messaging.types';

/** The Messenger's events and their handlers' signatures. */
export interface MessengerEventMap {
  message: (m: ReceivedMessage) => void | Promise<void>;
  error: (err: unknown, env: DeliveredEnvelope) => void;
  retry: (r: RetryRequest) => void;
  expiryReceipt: (r: ExpiryReceipt) => void;
  timer: (conv: string, timer: Timer | null) => void;
}

export type MessengerEvent = keyof MessengerEventMap;

/** The handlers of each Messenger event; the parts emit through it. */
export class MessengerEvents {
  private readonly handlers: { [E in MessengerEvent]: Set<MessengerEventMap[E]> } = {
    message: new Set(),
    error: new Set(),
    retry: new Set(),
    expiryReceipt: new Set(),
    timer: new Set(),
  };

  on<E extends MessengerEvent>(event: E, handler: MessengerEventMap[E]): void {
    this.handlers[event].add(handler);
  }

  /** Calls the handlers of a synchronous event, in the order they were added. */
  emit<E extends Exclude<MessengerEvent, 'message'>>(event: E, ...args: Parameters<MessengerEventMap[E]>): void {
    for (const h of this.handlers[event]) (h as (...a: Parameters<MessengerEventMap[E]>) => void)(...args);
  }

  /** Hands a received message to every message handler in turn; a handler's failure becomes an `error` event. */
  async deliver(m: ReceivedMessage, env: DeliveredEnvelope): Promise<void> {
    for (const h of this.handlers.message) {
      try {
        await h(m);
      } catch (err) {
        // The message is in the history already; an application handler's failure does not undo that.
        this.emit('error', err, env);
      }
    }
  }
}

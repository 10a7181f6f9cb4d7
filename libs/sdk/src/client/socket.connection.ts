import { io } from 'socket.io-client';
import { ClientEvent, ServerEvent, WS_PATH, type SendRequest, type SendResult, type TypingRequest, type TypingResult, type WsAck } from '@umbra/protocol';
import { UmbraApiError } from '../errors';
import type { ClientHandlers } from './client.handlers';
import type { DeviceSession } from './device.session';
import type { ClientSocket, InboxReceiver } from './inbox.receiver';

/** What the rest of the client does when the socket says so. */
export interface SocketHooks {
  /** Every (re)connection. */
  connected(): void;
  /** The server's prekey stock for this device runs low. */
  keysLow(): void;
  /** This device was removed from its account. */
  removed(): void;
}

const READ_TIMEOUT_MS = 5000;
const TYPING_TIMEOUT_MS = 5000;

/**
 * The socket to the gateway: connects with the session's token, reconnects with backoff (and with
 * a fresh token when the old one is refused) until closed, and routes server events.
 */
export class SocketConnection {
  socket: ClientSocket | undefined;
  private closedValue = false;
  private revoked = false;
  private connectedWaiters: (() => void)[] = [];

  constructor(
    private readonly baseUrl: string,
    private readonly session: DeviceSession,
    private readonly handlers: ClientHandlers,
    private readonly inbox: InboxReceiver,
    private readonly hooks: SocketHooks,
    private readonly sendTimeoutMs: number,
  ) {}

  get connected(): boolean {
    return this.socket?.connected ?? false;
  }

  get closed(): boolean {
    return this.closedValue;
  }

  /** Creates the socket and routes its events; it connects by itself. */
  open(): ClientSocket {
    const socket: ClientSocket = io(this.baseUrl, {
      path: WS_PATH,
      transports: ['websocket'],
      auth: (cb) => cb({ token: this.session.currentToken }),
      reconnection: true,
      reconnectionDelay: 250,
      reconnectionDelayMax: 5000,
      randomizationFactor: 0.5,
    });
    this.socket = socket;
    socket.on('connect', () => {
      const waiters = this.connectedWaiters;
      this.connectedWaiters = [];
      for (const w of waiters) w();
      for (const h of this.handlers.connection) h(true);
      this.hooks.connected();
    });
    socket.on('connect_error', (err: Error & { data?: { error?: { code?: string } } }) => {
      const code = err.data?.error?.code ?? err.message;
      if (code === 'TOKEN_INVALID' || code === 'TOKEN_EXPIRED' || code === 'UNAUTHENTICATED') {
        this.session.dropToken();
        this.session.authenticate().then(
          () => !this.closedValue && socket.connect(),
          () => setTimeout(() => !this.closedValue && socket.connect(), 1000),
        );
      }
    });
    socket.on('disconnect', (reason) => {
      for (const h of this.handlers.connection) h(false);
      // The server closed this socket on purpose (shutdown, replaced); socket.io leaves reconnecting to us.
      if (reason === 'io server disconnect' && !this.closedValue && !this.revoked) {
        setTimeout(() => !this.closedValue && socket.connect(), 200 + Math.random() * 800);
      }
    });
    this.routeServerEvents(socket);
    return socket;
  }

  private routeServerEvents(socket: ClientSocket): void {
    socket.on(ServerEvent.Messages, ({ messages }) => this.inbox.messages(messages));
    socket.on(ServerEvent.QueueEmpty, () => {
      this.inbox.enqueue(() => {
        for (const h of this.handlers.queueEmpty) h();
      });
    });
    socket.on(ServerEvent.KeysLow, () => this.hooks.keysLow());
    socket.on(ServerEvent.Expired, (ev) => {
      this.inbox.enqueue(async () => {
        for (const h of this.handlers.expired) await Promise.resolve(h(ev)).catch(() => undefined);
      });
    });
    socket.on(ServerEvent.Recalled, (ev) => {
      this.inbox.enqueue(async () => {
        for (const h of this.handlers.recalled) await Promise.resolve(h(ev)).catch(() => undefined);
      });
    });
    socket.on(ServerEvent.Typing, (ev) => {
      for (const h of this.handlers.typing) h(ev);
    });
    socket.on(ServerEvent.DevicesChanged, ({ listVersion }) => {
      for (const h of this.handlers.devicesChanged) h(listVersion);
    });
    socket.on(ServerEvent.Revoked, ({ reason }) => {
      this.revoked = reason === 'device_removed';
      for (const h of this.handlers.revoked) h(reason);
      if (reason === 'device_removed') this.hooks.removed();
    });
  }

  waitConnected(): Promise<void> {
    if (this.socket?.connected) return Promise.resolve();
    if (this.closedValue) return Promise.reject(new UmbraApiError(0, 'UNAVAILABLE', 'client closed'));
    return new Promise((resolve) => this.connectedWaiters.push(resolve));
  }

  emitSend(request: SendRequest): Promise<SendResult> {
    const socket = this.socket;
    if (!socket) return Promise.reject(new UmbraApiError(0, 'UNAVAILABLE', 'not connected'));
    return new Promise((resolve, reject) => {
      socket.timeout(this.sendTimeoutMs).emit(ClientEvent.Send, request, (err: Error | null, res: WsAck<SendResult>) => {
        if (err) return reject(new UmbraApiError(0, 'UNAVAILABLE', 'no answer from the server'));
        if (res.ok) resolve(res.data);
        else reject(new UmbraApiError(res.error.code === 'INTERNAL' ? 500 : 400, res.error.code, res.error.message, res.error.details));
      });
    });
  }

  /** Sends a read report over the socket; false when it is not connected (the caller uses REST). */
  async emitRead(ids: string[]): Promise<boolean> {
    const socket = this.socket;
    if (!socket?.connected) return false;
    await new Promise<void>((resolve) => socket.timeout(READ_TIMEOUT_MS).emit(ClientEvent.Read, { ids }, () => resolve()));
    return true;
  }

  async emitTyping(req: TypingRequest): Promise<TypingResult> {
    const socket = this.socket;
    if (!socket?.connected) return { devices: 0 };
    const res = await new Promise<WsAck<TypingResult>>((resolve) =>
      socket.timeout(TYPING_TIMEOUT_MS).emit(ClientEvent.Typing, req, (err: Error | null, ack: WsAck<TypingResult>) =>
        resolve(err ? { ok: false, error: { code: 'UNAVAILABLE', message: 'no answer to typing' } } : ack),
      ),
    );
    if (!res.ok) throw new UmbraApiError(res.error.code === 'UNAVAILABLE' ? 0 : 400, res.error.code, res.error.message, res.error.details);
    return res.data;
  }

  /** No reconnection from now on; waitConnected rejects. */
  markClosed(): void {
    this.closedValue = true;
  }

  /** Drops the socket and releases whoever waits for a connection. */
  disconnect(): void {
    this.socket?.disconnect();
    this.socket = undefined;
    for (const w of this.connectedWaiters) w();
    this.connectedWaiters = [];
  }
}

import type { ExpiryReceipt } from '@umbra/protocol';
import { Calls, type CallInfo, type CallLogEntry, type CallState, type CreatePeerConnection, type EndReason, type Media } from '../calls';
import { CallLog, CallSignalIds } from '../calls/call-log';
import type { UmbraCore } from './umbra.core';
import { UmbraError } from './umbra.errors';
import type { UmbraEventOf } from './umbra.events';

/** What `Umbra.create/open/link` take to make calls on this device (docs/calls.md, "The SDK"). */
export interface CallsFrontDoorOptions {
  /**
   * Creates the call's RTCPeerConnection with the relay-only `config` (the browser's native one, or
   * werift in Node): the application adds its local tracks or transceivers and any SFrame transform.
   */
  createPeerConnection: CreatePeerConnection;
  /** This device's SFrame base keys for a call, once both ephemerals are known (before media flows). */
  onMediaKeys?: (call: CallInfo, keys: { send: Uint8Array; receive: Uint8Array }) => void;
  /** Where ignored signals and failures are reported (never payloads or keys). */
  log?: (message: string, fields?: Record<string, unknown>) => void;
  /** How often ringing and outgoing calls check the ring time (ms, default 1000). */
  tickMs?: number;
}

/** What the part listens to on the calls module (a stub in the unit spec). */
export interface CallsEventSource {
  on(event: 'incoming', handler: (call: CallInfo) => void): () => void;
  on(event: 'state', handler: (callId: string, state: CallState) => void): () => void;
  on(event: 'ended', handler: (callId: string, reason: EndReason) => void): () => void;
  active(): CallInfo[];
}

/**
 * Turns the calls module's events into one `call` event per state change: `ringing` for an incoming
 * call, `outgoing`, `connecting`, `connected`, and `ended` once, with its reason.
 */
export function forwardCallEvents(calls: CallsEventSource, emit: (e: UmbraEventOf<'call'>) => void): () => void {
  const known = new Map<string, CallInfo>();
  const event = (c: CallInfo, state: CallState, reason?: EndReason): UmbraEventOf<'call'> => ({
    type: 'call', callId: c.callId, peer: c.peer, state, media: c.media, direction: c.direction, ...(reason ? { reason } : {}),
  });
  const offs = [
    calls.on('incoming', (c) => void known.set(c.callId, c)),
    calls.on('state', (callId, state) => {
      const c = known.get(callId) ?? calls.active().find((a) => a.callId === callId);
      if (!c) return;
      known.set(callId, c);
      if (state !== 'ended') emit(event(c, state));
    }),
    calls.on('ended', (callId, reason) => {
      const c = known.get(callId);
      known.delete(callId);
      if (c) emit(event(c, 'ended', reason));
    }),
  ];
  return () => offs.forEach((off) => off());
}

/**
 * Expiry receipts as `receipt` events, except those for call signals: an offer or ICE batch that
 * expired unfetched (§10: 60 s) is a missed call for the callee, not a message that vanished unread.
 */
export function forwardExpiryReceipts(source: { on(event: 'expiryReceipt', handler: (r: ExpiryReceipt) => void): void }, signals: CallSignalIds, emit: (r: ExpiryReceipt) => void): void {
  source.on('expiryReceipt', (r) => {
    signals.has(r.clientMessageId).then(
      (isCallSignal) => isCallSignal || emit(r),
      () => emit(r),
    );
  });
}

/**
 * `umbra.calls`: one-to-one audio and video calls (PROTOCOL.md §10). Signalling travels E2EE to every
 * device of the peer; media goes through TURN relays only. State changes and incoming calls arrive as
 * `call` events. Without the `calls` option this device neither rings nor calls; `history` still works.
 */
export class CallsPart {
  private readonly calls: Calls | undefined;
  private readonly callLog: CallLog;
  private readonly stopEvents: (() => void) | undefined;

  constructor(
    private readonly core: UmbraCore,
    opts: CallsFrontDoorOptions | undefined,
    emit: (e: UmbraEventOf<'call'>) => void,
  ) {
    this.callLog = new CallLog(core.store);
    if (!opts) return;
    const calls = new Calls({
      messenger: core.messenger,
      store: core.store,
      createPeerConnection: opts.createPeerConnection,
      now: core.now,
      ...(opts.tickMs !== undefined ? { tickMs: opts.tickMs } : {}),
      ...(opts.log ? { log: opts.log } : {}),
    });
    const onKeys = opts.onMediaKeys;
    if (onKeys) calls.on('keys', (call, keys) => onKeys(call, keys));
    this.stopEvents = forwardCallEvents(calls, emit);
    this.calls = calls;
  }

  /** Calls `peer` (an account id) on all of its devices; resolves with the call id once the offer is sent. */
  async start(peer: string, opts: { media?: Media } = {}): Promise<string> {
    return this.enabled().call(peer, opts.media ?? 'audio');
  }

  /** Picks up a ringing call on this device (the caller's other devices stop ringing). */
  async answer(callId: string): Promise<void> {
    return this.enabled().answer(callId);
  }

  /** Declines a ringing call on every device of this account. */
  async decline(callId: string): Promise<void> {
    return this.enabled().decline(callId);
  }

  /** Ends a call in any state (a caller before an answer cancels it on every callee device). */
  async hangup(callId: string): Promise<void> {
    return this.enabled().hangup(callId);
  }

  /** Calls that have not ended on this device. */
  active(): CallInfo[] {
    return this.calls?.active() ?? [];
  }

  /** This device's finished calls, newest first: answered (with a duration), missed, declined, busy… */
  async history(): Promise<CallLogEntry[]> {
    // Signals already received (a missed call that arrived while away) are in the log first.
    await this.calls?.idle();
    return this.callLog.list();
  }

  /** Ends active calls (a ringing one keeps ringing on the account's other devices) and stops. */
  async close(): Promise<void> {
    this.stopEvents?.();
    await this.calls?.close();
  }

  private enabled(): Calls {
    this.core.assertOpen();
    if (!this.calls) throw new UmbraError('NO_CALL_MEDIA', 'calls need the `calls` option (createPeerConnection) in Umbra.create/open/link');
    return this.calls;
  }
}

import { b64uEncode, hexEncode, pub, randomBytes, sha256 } from '@umbra/crypto';
import type { KeyValueStore } from '../store';
import { CallLog, CallSignalIds, type CallLogEntry } from './call-log';
import { CallMediaNegotiator } from './call-media.negotiator';
import { CallMachine, type CallEffect, type CallState, type EndReason } from './call.machine';
import { CallSession } from './call.session';
import { CallSignalChannel, type CallsMessage, type CallsMessenger } from './call-signals.channel';
import type { CallSignal, Media } from './call-signal';
import { decodeCandidate, type CreatePeerConnection } from './peer-connection';

export { SIGNAL_ENVELOPE_TTL_MS, type CallsMessage, type CallsMessenger } from './call-signals.channel';

export interface CallsOptions {
  messenger: CallsMessenger;
  store: KeyValueStore;
  createPeerConnection: CreatePeerConnection;
  now?: () => number;
  /** How often ringing and outgoing calls check the ring time (ms). */
  tickMs?: number;
  /** Where ignored signals and failures are reported (never payloads or keys). */
  log?: (message: string, fields?: Record<string, unknown>) => void;
  /** Test hook: rewrites an SDP this device sends, before it is encrypted (the SDP-tamper test). */
  rewriteOutgoingSdp?: (sdp: string, op: 'offer' | 'answer') => string;
}

export interface CallInfo {
  callId: string;
  peer: string;
  media: Media;
  direction: 'incoming' | 'outgoing';
  state: CallState;
}

interface CallsEvents {
  incoming: (call: CallInfo) => void;
  state: (callId: string, state: CallState) => void;
  ended: (callId: string, reason: EndReason) => void;
  ignored: (reason: string, callId: string | undefined) => void;
  /** This device's SFrame base keys for a call, once both ephemerals are known. */
  keys: (call: CallInfo, keys: { send: Uint8Array; receive: Uint8Array }) => void;
}

const hex = (bytes: Uint8Array) => hexEncode(bytes);
const offerHashOf = (sdp: string) => b64uEncode(sha256(new TextEncoder().encode(sdp)));

/**
 * One-to-one calls (PROTOCOL.md §10): drives a CallMachine per call from the signals the channel
 * receives and the media negotiator reports, and keeps the call log. Every step runs in one queue,
 * so signals and local actions of a call never interleave.
 */
export class Calls {
  readonly callLog: CallLog;
  private readonly signals: CallSignalChannel;
  private readonly media: CallMediaNegotiator;
  private readonly sessions = new Map<string, CallSession>();
  private readonly endedIds = new Set<string>();
  private readonly listeners: { [K in keyof CallsEvents]: Set<CallsEvents[K]> } = { incoming: new Set(), state: new Set(), ended: new Set(), ignored: new Set(), keys: new Set() };
  private queue: Promise<unknown> = Promise.resolve();
  private ticker: ReturnType<typeof setInterval> | undefined;
  private readonly now: () => number;
  private closed = false;

  constructor(private readonly opts: CallsOptions) {
    this.now = opts.now ?? (() => Date.now());
    this.callLog = new CallLog(opts.store);
    this.signals = new CallSignalChannel(opts.messenger, new CallSignalIds(opts.store, this.now), this.now);
    this.media = new CallMediaNegotiator({ messenger: opts.messenger, createPeerConnection: opts.createPeerConnection, ...(opts.rewriteOutgoingSdp ? { rewriteOutgoingSdp: opts.rewriteOutgoingSdp } : {}) });
    opts.messenger.on('message', (m) => {
      if (m.content.k === 'call') void this.enqueue(() => this.receive(m));
    });
  }

  on<K extends keyof CallsEvents>(event: K, handler: CallsEvents[K]): () => void {
    this.listeners[event].add(handler);
    return () => this.listeners[event].delete(handler);
  }

  /** Calls `peer` (an account id) on all of its devices; resolves with the call id once the offer is sent. */
  call(peer: string, media: Media): Promise<string> {
    return this.enqueue(async () => {
      if (this.activeSessions().length > 0) throw new Error('already in a call');
      const callId = hex(randomBytes(8));
      const s = new CallSession(callId, this.newPartyId(), 'caller', peer, media, this.now());
      this.sessions.set(callId, s);
      try {
        const sdp = await this.media.offer(await this.openPeerConnection(s));
        const placed = CallMachine.place({ callId, partyId: s.partyId, media, sdp, E_c: b64uEncode(pub(s.ephemeralSk)), offerHash: offerHashOf(sdp), now: this.now() });
        s.machine = placed.call;
        await this.run(s, placed.effects);
      } catch (err) {
        this.sessions.delete(callId);
        this.media.close(s);
        throw err;
      }
      this.startTicker();
      return callId;
    });
  }

  /** Picks up a ringing call on this device. */
  answer(callId: string): Promise<void> {
    return this.enqueue(async () => {
      const s = this.sessions.get(callId);
      if (!s?.machine || !s.offer || s.machine.state !== 'ringing') throw new Error(`no ringing call ${callId}`);
      try {
        const sdp = await this.media.answer(await this.openPeerConnection(s), s.offer.signal.sdp);
        await this.deriveKeys(s, s.offer.signal.E_c, s.offer.fromDevice);
        await this.run(s, s.machine.answer(sdp, b64uEncode(pub(s.ephemeralSk))));
      } catch (err) {
        this.report('answering failed', { callId, error: String(err) });
        await this.run(s, s.machine.mediaFailed());
      }
    });
  }

  decline(callId: string): Promise<void> {
    return this.enqueue(async () => {
      const s = this.sessions.get(callId);
      if (s?.machine) await this.run(s, s.machine.decline());
    });
  }

  hangup(callId: string): Promise<void> {
    return this.enqueue(async () => {
      const s = this.sessions.get(callId);
      if (s?.machine) await this.run(s, s.machine.hangup());
    });
  }

  /** Calls that have not ended. */
  active(): CallInfo[] {
    return this.activeSessions().map((s) => this.info(s));
  }

  /** This device's SFrame base keys for a call (§10): `send` for its media, `receive` for the peer's. */
  mediaKeys(callId: string): { send: Uint8Array; receive: Uint8Array } | undefined {
    return this.sessions.get(callId)?.keys;
  }

  /** Resolves once every signal and action queued so far has been handled. */
  async idle(): Promise<void> {
    await this.enqueue(async () => undefined);
  }

  /** Call history, newest first. */
  log(): Promise<CallLogEntry[]> {
    return this.callLog.list();
  }

  /** Hangs up calls in progress and stops; a call ringing here keeps ringing on the account's other devices. */
  async close(): Promise<void> {
    for (const s of this.activeSessions()) if (s.machine?.state !== 'ringing') await this.hangup(s.callId).catch(() => undefined);
    await this.enqueue(async () => undefined);
    this.closed = true;
    this.stopTicker();
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const p = this.queue.then(task);
    this.queue = p.catch((err: unknown) => this.report('call task failed', { error: String(err) }));
    return p;
  }

  private async receive(m: CallsMessage): Promise<void> {
    if (this.closed) return;
    const received = this.signals.receive(m);
    if ('ignored' in received) return this.ignored(received.ignored, received.callId);
    const { signal, source } = received;
    const s = this.sessions.get(signal.call_id);
    if (s?.machine) {
      if (source === 'peer' && m.from !== s.peer) return this.ignored(`${signal.op} from an account that is not in the call`, signal.call_id);
      await this.run(s, s.machine.receiveSignal(signal, source), m.fromDevice);
      // Media may have come up before the caller's select_answer named this device.
      if (signal.op === 'select_answer' && s.machine.state === 'connecting' && s.pc?.connectionState === 'connected') await this.run(s, s.machine.mediaConnected());
      return;
    }
    if (signal.op === 'offer' && source === 'peer') return this.receiveOffer(m, signal);
    this.ignored(`${signal.op} for ${this.endedIds.has(signal.call_id) ? 'an ended' : 'an unknown'} call${source === 'own' ? ' (our own device)' : ''}`, signal.call_id);
  }

  private async receiveOffer(m: CallsMessage, offer: Extract<CallSignal, { op: 'offer' }>): Promise<void> {
    if (this.endedIds.has(offer.call_id)) return this.ignored('offer for an ended call', offer.call_id);
    const mine = this.activeSessions();
    const glare = mine.find((s) => s.role === 'caller' && s.peer === m.from && s.machine?.state === 'outgoing');
    if (glare) {
      if (CallMachine.glareWinner(glare.callId, offer.call_id) === glare.callId) return this.ignored('glare: our call has the smaller call_id and stays', offer.call_id);
      await this.run(glare, [{ kind: 'send', to: 'peer', signal: { op: 'hangup', call_id: glare.callId, party_id: glare.partyId, reason: 'glare' } }, ...glare.machine!.endForGlare()]);
    } else if (mine.length > 0) {
      await this.signals.send(m.from, { op: 'busy', call_id: offer.call_id, party_id: this.newPartyId() });
      const at = this.now();
      await this.callLog.add({ callId: offer.call_id, peer: m.from, direction: 'incoming', media: offer.media, outcome: 'busy', startedAt: at, endedAt: at, durationMs: 0 });
      return;
    }
    const s = new CallSession(offer.call_id, this.newPartyId(), 'callee', m.from, offer.media, this.now(), { signal: offer, fromDevice: m.fromDevice });
    const received = CallMachine.receive(offer, { partyId: s.partyId, offerHash: offerHashOf(offer.sdp), sentAt: m.content.ts, now: this.now() });
    s.machine = received.call;
    this.sessions.set(s.callId, s);
    if (received.call.state === 'ringing') for (const h of this.listeners.incoming) h(this.info(s));
    await this.run(s, received.effects);
    this.startTicker();
    // Glare: the other side's call won, so this device answers it instead of ringing.
    if (glare && s.machine.state === 'ringing') void this.answer(s.callId);
  }

  private async run(s: CallSession, effects: CallEffect[], fromDevice?: number): Promise<void> {
    const toPeer = new Set(effects.flatMap((e) => (e.kind === 'send' && e.to === 'peer' ? [e.signal] : [])));
    for (const e of effects) {
      switch (e.kind) {
        case 'send':
          // Every message to the peer reaches our other devices too (Messenger's sync copy).
          if (e.to === 'own' && toPeer.has(e.signal)) break;
          try {
            await this.signals.send(e.to === 'peer' ? s.peer : this.signals.me, e.signal, e.urgent ? { urgent: true } : {});
          } catch (err) {
            // An offer that cannot be sent fails call(); any later signal is best effort (the ring time ends the call).
            if (e.signal.op === 'offer') throw err;
            this.report('call signal not sent', { callId: s.callId, op: e.signal.op, error: String(err) });
          }
          break;
        case 'remote_answer':
          if (fromDevice !== undefined && !s.keys) await this.deriveKeys(s, e.E_r, fromDevice);
          await s.pc?.setRemoteDescription({ type: 'answer', sdp: e.sdp });
          break;
        case 'remote_ice':
          for (const raw of e.candidates) {
            const c = decodeCandidate(raw);
            if (!c) this.ignored('an ICE candidate that is not {candidate, sdpMid, sdpMLineIndex}', s.callId);
            else await s.pc?.addIceCandidate(c).catch((err: unknown) => this.report('ICE candidate refused', { callId: s.callId, error: String(err) }));
          }
          // A callee whose connection never reported the blip (Chromium's controlled side can take longer to
          // notice than the restart takes) sees no state change when the restarted ICE connects: the caller's
          // new candidates (it has a relay again) on a connection that is up are the sign that media is back.
          if (s.role === 'callee' && e.candidates.length > 0 && s.connectedAt !== undefined && s.machine?.state === 'connecting' && s.pc?.connectionState === 'connected') await this.run(s, s.machine.mediaConnected());
          break;
        case 'state':
          // A reconnect keeps the time the call first connected (the log's duration).
          if (e.state === 'connected') s.connectedAt ??= this.now();
          for (const h of this.listeners.state) h(s.callId, e.state);
          if (e.state === 'connecting') await this.flushIce(s);
          break;
        case 'ended':
          await this.finish(s, e.reason);
          break;
        case 'ignored':
          this.ignored(e.reason, s.callId);
          break;
        case 'ice_restart':
          await this.restartIce(s);
          break;
        case 'remote_restart':
          await this.answerRestart(s, e.sdp);
          break;
        case 'ring':
        case 'stop_ringing':
          break;
      }
    }
  }

  private openPeerConnection(s: CallSession) {
    return this.media.open(s, {
      candidates: () => {
        if (s.flushScheduled) return;
        s.flushScheduled = true;
        setTimeout(() => void this.enqueue(() => this.flushIce(s)), 20);
      },
      connectionState: (pc) => {
        void this.enqueue(async () => {
          if (!s.active || s.pc !== pc) return;
          const m = s.machine!;
          if (pc.connectionState === 'connected') await this.run(s, m.mediaConnected());
          // A network blip on a connected call: reconnect (ICE restart) instead of failing at once.
          else if ((pc.connectionState === 'disconnected' || pc.connectionState === 'failed') && m.state === 'connected') await this.run(s, m.mediaInterrupted(this.now()));
          else if (pc.connectionState === 'failed' && !m.reconnecting) await this.run(s, m.mediaFailed());
        });
      },
    });
  }

  /** Caller, after a network blip: a new offer with fresh ICE credentials for the same call, to the chosen device. */
  private async restartIce(s: CallSession): Promise<void> {
    const pc = s.pc;
    if (!pc || !s.machine) return;
    try {
      const sdp = await this.media.offer(pc, true);
      await this.run(s, s.machine.restartOffer(sdp, b64uEncode(pub(s.ephemeralSk)), offerHashOf(sdp)));
    } catch (err) {
      // The reconnect deadline ends the call.
      this.report('ICE restart failed', { callId: s.callId, error: String(err) });
    }
  }

  /** Callee: the caller's ICE-restart offer (E2EE, same call, the device that placed it) is answered. */
  private async answerRestart(s: CallSession, offerSdp: string): Promise<void> {
    const pc = s.pc;
    if (!pc || !s.machine) return;
    try {
      const sdp = await this.media.answer(pc, offerSdp);
      await this.run(s, s.machine.restartAnswer(sdp, b64uEncode(pub(s.ephemeralSk)), offerHashOf(offerSdp)));
    } catch (err) {
      this.report('answering an ICE restart failed', { callId: s.callId, error: String(err) });
    }
  }

  /** Sends buffered candidates in one `ice` signal once the machine allows it (after an answer). */
  private async flushIce(s: CallSession): Promise<void> {
    s.flushScheduled = false;
    const m = s.machine;
    if (!m || m.ended || (m.state !== 'connecting' && m.state !== 'connected')) return;
    if (s.pendingIce.length === 0 && !s.pendingIceEnd) return;
    const batch = s.pendingIce.splice(0, 64);
    const end = s.pendingIceEnd && s.pendingIce.length === 0;
    if (end) s.pendingIceEnd = false;
    await this.run(s, m.localIce(batch, end));
    if (s.pendingIce.length > 0) await this.flushIce(s);
  }

  private async deriveKeys(s: CallSession, peerEphemeral: string, peerDevice: number): Promise<void> {
    try {
      s.setKeys(await this.media.keys(s, peerEphemeral, peerDevice));
      for (const h of this.listeners.keys) h(this.info(s), s.keys!);
    } catch (err) {
      this.report('no media keys for the call', { callId: s.callId, error: String(err) });
    }
  }

  private async finish(s: CallSession, reason: EndReason): Promise<void> {
    this.sessions.delete(s.callId);
    this.endedIds.add(s.callId);
    this.media.close(s);
    await this.callLog.addEnded(s, reason, this.now());
    for (const h of this.listeners.ended) h(s.callId, reason);
    if (this.activeSessions().length === 0) this.stopTicker();
  }

  private startTicker(): void {
    if (this.ticker || this.closed) return;
    this.ticker = setInterval(() => {
      void this.enqueue(async () => {
        for (const s of this.activeSessions()) await this.run(s, s.machine!.tick(this.now()));
      });
    }, this.opts.tickMs ?? 1000);
    (this.ticker as { unref?: () => void }).unref?.();
  }

  private stopTicker(): void {
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = undefined;
  }

  private activeSessions(): CallSession[] {
    return [...this.sessions.values()].filter((s) => s.active);
  }

  private info(s: CallSession): CallInfo {
    return { callId: s.callId, peer: s.peer, media: s.media, direction: s.role === 'caller' ? 'outgoing' : 'incoming', state: s.machine?.state ?? 'outgoing' };
  }

  private newPartyId(): string {
    return b64uEncode(randomBytes(12));
  }

  private ignored(reason: string, callId: string | undefined): void {
    this.report(`call signal ignored: ${reason}`, callId ? { callId } : {});
    for (const h of this.listeners.ignored) h(reason, callId);
  }

  private report(message: string, fields: Record<string, unknown> = {}): void {
    this.opts.log?.(message, fields);
  }
}

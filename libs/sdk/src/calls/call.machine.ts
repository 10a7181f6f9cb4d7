import type { CallSignal, HangupReason, Media } from './call-signal';

/**
 * One call as one device sees it (PROTOCOL.md §10 and the rules of docs/protocol.md §10): a pure
 * state machine. Inputs are local actions, signals from the peer's devices or our own other devices,
 * and the clock; outputs are effects the SDK carries out (send a signal, ring, hand an answer to
 * WebRTC). It never throws at the UI: a signal it cannot use comes back as an `ignored` effect with
 * the reason to log.
 */
export type CallRole = 'caller' | 'callee';
export type CallState = 'outgoing' | 'ringing' | 'connecting' | 'connected' | 'ended';
export type EndReason =
  | 'hangup'
  | 'remote_hangup'
  | 'declined'
  | 'declined_elsewhere'
  | 'answered_elsewhere'
  | 'busy'
  | 'missed'
  | 'no_answer'
  | 'glare'
  | 'failed'
  | 'connection_lost';

export type CallEffect =
  /** `urgent`: the servers wake the recipient's devices that are not connected (only a call's first offer). */
  | { kind: 'send'; to: 'peer' | 'own'; signal: CallSignal; urgent?: true }
  | { kind: 'ring' }
  | { kind: 'stop_ringing' }
  | { kind: 'remote_answer'; sdp: string; E_r: string }
  | { kind: 'remote_ice'; candidates: string[]; end: boolean }
  /** Caller: the media path dropped; make an offer with `iceRestart` and hand it to `restartOffer`. */
  | { kind: 'ice_restart' }
  /** Callee: the caller's ICE-restart offer (same call, same caller device, inside E2EE); answer it with `restartAnswer`. */
  | { kind: 'remote_restart'; sdp: string }
  | { kind: 'state'; state: CallState }
  | { kind: 'ended'; reason: EndReason }
  | { kind: 'ignored'; reason: string };

/** How long a phone rings (and a caller waits) before the call is missed. */
export const RING_MS = 30_000;
/** How long a connected call may try to get its media path back (ICE restart) before it ends as connection_lost. */
export const RECONNECT_MS = 10_000;

/** How a peer's hangup ends the call here: its media failed (ICE, or a DTLS certificate that does not match the SDP) means ours did too. */
const endedByPeer = (reason: HangupReason): EndReason =>
  reason === 'connection_lost' ? 'connection_lost' : reason === 'ice_failed' || reason === 'sdp_mismatch' ? 'failed' : 'remote_hangup';

/** Where a signal came from: a device of the peer account, or another device of our own account. */
export type SignalSource = 'peer' | 'own';

export class CallMachine {
  state: CallState;
  endReason: EndReason | undefined;
  /** The callee device whose answer the caller chose (caller), or ours once chosen (callee). */
  selectedParty: string | undefined;
  private readonly deadline: number;
  /** While reconnecting after a network blip: when the call gives up. */
  private reconnectDeadline: number | undefined;
  /** Caller: b64u(SHA-256(the ICE-restart offer)) a restart answer must carry. */
  private restartOfferHash: string | undefined;
  private wasConnected = false;

  private constructor(
    readonly role: CallRole,
    readonly callId: string,
    /** This device's party id in this call. */
    readonly partyId: string,
    readonly media: Media,
    /** b64u(SHA-256(offer SDP)): what a valid answer must carry. */
    readonly offerHash: string,
    startedAt: number,
    /** Caller: the party that sent the offer we hold (callee side). */
    readonly callerParty: string | undefined,
  ) {
    this.state = role === 'caller' ? 'outgoing' : 'ringing';
    this.deadline = startedAt + RING_MS;
  }

  /** We call: the offer goes to every device of the peer. */
  static place(opts: { callId: string; partyId: string; media: Media; sdp: string; E_c: string; offerHash: string; now: number }): { call: CallMachine; effects: CallEffect[] } {
    const call = new CallMachine('caller', opts.callId, opts.partyId, opts.media, opts.offerHash, opts.now, undefined);
    const offer: CallSignal = { op: 'offer', call_id: opts.callId, party_id: opts.partyId, media: opts.media, sdp: opts.sdp, E_c: opts.E_c };
    return { call, effects: [{ kind: 'send', to: 'peer', signal: offer, urgent: true }, { kind: 'state', state: 'outgoing' }] };
  }

  /**
   * An offer reached this device. `sentAt` is the offer's own timestamp: an offer older than the
   * ring time (a device that comes online late) is a missed call at once and never rings.
   */
  static receive(offer: Extract<CallSignal, { op: 'offer' }>, opts: { partyId: string; offerHash: string; sentAt: number; now: number }): { call: CallMachine; effects: CallEffect[] } {
    const call = new CallMachine('callee', offer.call_id, opts.partyId, offer.media, opts.offerHash, Math.min(opts.sentAt, opts.now), offer.party_id);
    if (opts.now >= call.deadline) return { call, effects: call.end('missed') };
    return { call, effects: [{ kind: 'state', state: 'ringing' }, { kind: 'ring' }] };
  }

  get ended(): boolean {
    return this.state === 'ended';
  }

  /** Callee: pick up. The answer goes to the caller; the caller's select_answer decides who got the call. */
  answer(sdp: string, E_r: string): CallEffect[] {
    if (this.role !== 'callee' || this.state !== 'ringing') return [{ kind: 'ignored', reason: `cannot answer in state ${this.state}` }];
    this.state = 'connecting';
    const answer: CallSignal = { op: 'answer', call_id: this.callId, party_id: this.partyId, sdp, E_r, offer_hash: this.offerHash };
    return [{ kind: 'stop_ringing' }, { kind: 'send', to: 'peer', signal: answer }, { kind: 'state', state: 'connecting' }];
  }

  /** Callee: decline. Every device of ours stops ringing; the caller hears it was declined. */
  decline(): CallEffect[] {
    if (this.role !== 'callee' || this.state !== 'ringing') return [{ kind: 'ignored', reason: `cannot decline in state ${this.state}` }];
    const reject: CallSignal = { op: 'reject', call_id: this.callId, party_id: this.partyId };
    return [{ kind: 'send', to: 'peer', signal: reject }, { kind: 'send', to: 'own', signal: reject }, ...this.end('declined')];
  }

  /** Either side hangs up (a caller before an answer cancels the call on every callee device). */
  hangup(): CallEffect[] {
    if (this.ended) return [{ kind: 'ignored', reason: 'the call has ended' }];
    if (this.role === 'callee' && this.state === 'ringing') return this.decline();
    const signal: CallSignal = { op: 'hangup', call_id: this.callId, party_id: this.partyId, reason: 'hangup' };
    return [{ kind: 'send', to: 'peer', signal }, ...this.end('hangup')];
  }

  /** WebRTC reports the media path up. */
  mediaConnected(): CallEffect[] {
    if (this.state !== 'connecting') return [{ kind: 'ignored', reason: `media connected in state ${this.state}` }];
    if (this.role === 'callee' && this.selectedParty !== this.partyId) return [{ kind: 'ignored', reason: 'media up before the caller selected this device' }];
    this.state = 'connected';
    this.wasConnected = true;
    this.reconnectDeadline = undefined;
    return [{ kind: 'state', state: 'connected' }];
  }

  /**
   * The media path of a connected call dropped (ICE disconnected or failed): back to `connecting`
   * for at most RECONNECT_MS. The caller restarts ICE; the callee waits for its offer.
   */
  mediaInterrupted(now: number): CallEffect[] {
    if (this.state !== 'connected') return [{ kind: 'ignored', reason: `media interrupted in state ${this.state}` }];
    this.state = 'connecting';
    this.reconnectDeadline = now + RECONNECT_MS;
    return [{ kind: 'state', state: 'connecting' }, ...(this.role === 'caller' ? [{ kind: 'ice_restart' as const }] : [])];
  }

  /** Whether the call is getting its media path back after having been connected. */
  get reconnecting(): boolean {
    return this.reconnectDeadline !== undefined && !this.ended;
  }

  /** Caller: the ICE-restart offer goes to the chosen callee device only (same call_id, E2EE). */
  restartOffer(sdp: string, E_c: string, offerHash: string): CallEffect[] {
    if (this.role !== 'caller' || !this.reconnecting) return [{ kind: 'ignored', reason: 'no ICE restart in progress' }];
    this.restartOfferHash = offerHash;
    return [{ kind: 'send', to: 'peer', signal: { op: 'offer', call_id: this.callId, party_id: this.partyId, media: this.media, sdp, E_c } }];
  }

  /** Callee: the answer to the caller's ICE-restart offer, carrying that offer's hash. */
  restartAnswer(sdp: string, E_r: string, offerHash: string): CallEffect[] {
    if (this.role !== 'callee' || this.ended || this.state === 'ringing') return [{ kind: 'ignored', reason: `no restart answer in state ${this.state}` }];
    return [{ kind: 'send', to: 'peer', signal: { op: 'answer', call_id: this.callId, party_id: this.partyId, sdp, E_r, offer_hash: offerHash } }];
  }

  /** WebRTC gave up (ICE failed, DTLS fingerprint mismatch): the call fails loudly on both sides. */
  mediaFailed(): CallEffect[] {
    if (this.ended) return [];
    const signal: CallSignal = { op: 'hangup', call_id: this.callId, party_id: this.partyId, reason: 'ice_failed' };
    return [{ kind: 'send', to: 'peer', signal }, ...this.end('failed')];
  }

  /** Local ICE candidates: only to the chosen party, and a callee sends none before it answered. */
  localIce(candidates: string[], end: boolean): CallEffect[] {
    if (this.ended || this.state === 'ringing') return [{ kind: 'ignored', reason: `no ICE in state ${this.state}` }];
    if (this.role === 'caller' && this.state === 'outgoing') return [{ kind: 'ignored', reason: 'ICE waits for an answer' }];
    return [{ kind: 'send', to: 'peer', signal: { op: 'ice', call_id: this.callId, party_id: this.partyId, candidates, end } }];
  }

  tick(now: number): CallEffect[] {
    // A callee that learnt of the blip from the caller's restart offer starts its clock at the next tick.
    if (this.state === 'connecting' && this.wasConnected && this.reconnectDeadline === undefined) this.reconnectDeadline = now + RECONNECT_MS;
    if (this.reconnecting && now >= this.reconnectDeadline!) {
      const signal: CallSignal = { op: 'hangup', call_id: this.callId, party_id: this.partyId, reason: 'connection_lost' };
      return [{ kind: 'send', to: 'peer', signal }, ...this.end('connection_lost')];
    }
    if (now < this.deadline) return [];
    if (this.state === 'ringing') return this.end('missed');
    if (this.state === 'outgoing') {
      const signal: CallSignal = { op: 'hangup', call_id: this.callId, party_id: this.partyId, reason: 'timeout' };
      return [{ kind: 'send', to: 'peer', signal }, ...this.end('no_answer')];
    }
    return [];
  }

  /** A signal of this call from a peer device or one of our own. */
  receiveSignal(signal: CallSignal, from: SignalSource): CallEffect[] {
    if (signal.call_id !== this.callId) return [{ kind: 'ignored', reason: 'signal of another call' }];
    if (this.ended) return [{ kind: 'ignored', reason: `${signal.op} for an ended call` }];
    return this.role === 'caller' ? this.callerReceives(signal, from) : this.calleeReceives(signal, from);
  }

  private callerReceives(signal: CallSignal, from: SignalSource): CallEffect[] {
    if (from === 'own') return [{ kind: 'ignored', reason: `${signal.op} from our own device` }];
    switch (signal.op) {
      case 'answer': {
        if (this.restartOfferHash !== undefined && signal.party_id === this.selectedParty) {
          if (signal.offer_hash !== this.restartOfferHash) return [{ kind: 'ignored', reason: 'restart answer to another offer (offer_hash mismatch)' }];
          this.restartOfferHash = undefined;
          return [{ kind: 'remote_answer', sdp: signal.sdp, E_r: signal.E_r }];
        }
        if (this.state !== 'outgoing') return [{ kind: 'ignored', reason: `answer from ${signal.party_id} after ${this.selectedParty ?? 'the end'} was chosen` }];
        if (signal.offer_hash !== this.offerHash) return [{ kind: 'ignored', reason: 'answer to another offer (offer_hash mismatch)' }];
        this.selectedParty = signal.party_id;
        this.state = 'connecting';
        const select: CallSignal = { op: 'select_answer', call_id: this.callId, party_id: this.partyId, selected_party_id: signal.party_id };
        return [{ kind: 'send', to: 'peer', signal: select }, { kind: 'remote_answer', sdp: signal.sdp, E_r: signal.E_r }, { kind: 'state', state: 'connecting' }];
      }
      case 'reject':
        return this.state === 'outgoing' ? this.end('declined') : [{ kind: 'ignored', reason: 'reject after an answer was chosen' }];
      case 'busy':
        return this.state === 'outgoing' ? this.end('busy') : [{ kind: 'ignored', reason: 'busy after an answer was chosen' }];
      case 'hangup':
        if (this.selectedParty !== undefined && signal.party_id !== this.selectedParty) return [{ kind: 'ignored', reason: 'hangup from a device that is not in the call' }];
        return this.end(endedByPeer(signal.reason));
      case 'ice':
        if (signal.party_id !== this.selectedParty) return [{ kind: 'ignored', reason: 'ICE from a device that is not in the call' }];
        return [{ kind: 'remote_ice', candidates: signal.candidates, end: signal.end }];
      default:
        return [{ kind: 'ignored', reason: `${signal.op} is not for a caller` }];
    }
  }

  private calleeReceives(signal: CallSignal, from: SignalSource): CallEffect[] {
    if (from === 'own') {
      // Another device of ours declined: every device stops ringing.
      if (signal.op === 'reject' && this.state === 'ringing') return this.end('declined_elsewhere');
      return [{ kind: 'ignored', reason: `${signal.op} from our own device` }];
    }
    if (signal.party_id !== this.callerParty) return [{ kind: 'ignored', reason: `${signal.op} from a device that did not place the call` }];
    switch (signal.op) {
      case 'select_answer':
        if (signal.selected_party_id !== this.partyId) return this.end('answered_elsewhere');
        if (this.state !== 'connecting') return [{ kind: 'ignored', reason: 'selected without having answered' }];
        this.selectedParty = this.partyId;
        return [];
      case 'offer':
        // Renegotiation only as an ICE restart of this call, from the caller device that placed it, once connected.
        if (this.selectedParty !== this.partyId || (this.state !== 'connected' && this.state !== 'connecting')) return [{ kind: 'ignored', reason: `offer for a call in state ${this.state}` }];
        if (signal.media !== this.media) return [{ kind: 'ignored', reason: 'restart offer with other media' }];
        if (this.state === 'connected') {
          this.state = 'connecting';
          return [{ kind: 'state', state: 'connecting' }, { kind: 'remote_restart', sdp: signal.sdp }];
        }
        return [{ kind: 'remote_restart', sdp: signal.sdp }];
      case 'hangup':
        if (this.state === 'ringing') return this.end('missed');
        return this.end(signal.reason === 'answered_elsewhere' ? 'answered_elsewhere' : endedByPeer(signal.reason));
      case 'ice':
        if (this.state === 'ringing') return [{ kind: 'ignored', reason: 'ICE before answering' }];
        return [{ kind: 'remote_ice', candidates: signal.candidates, end: signal.end }];
      default:
        return [{ kind: 'ignored', reason: `${signal.op} is not for a callee` }];
    }
  }

  private end(reason: EndReason): CallEffect[] {
    const wasRinging = this.state === 'ringing';
    this.state = 'ended';
    this.endReason = reason;
    return [...(wasRinging ? [{ kind: 'stop_ringing' as const }] : []), { kind: 'state', state: 'ended' }, { kind: 'ended', reason }];
  }

  /** Glare: both sides called each other; the call with the smaller call_id stays, the other ends. */
  static glareWinner(a: string, b: string): string {
    return a < b ? a : b;
  }
  endForGlare(): CallEffect[] {
    return this.ended ? [] : this.end('glare');
  }
}

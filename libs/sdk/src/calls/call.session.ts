import { generateSecretKey, type CallMediaKeys } from '@umbra/crypto';
import type { CallMachine, CallRole } from './call.machine';
import type { CallSignal, Media } from './call-signal';
import type { CallPeerConnection } from './peer-connection';

/** What the calls module keeps about one call on this device besides its state machine. */
export class CallSession {
  machine: CallMachine | undefined;
  pc: CallPeerConnection | undefined;
  /** Local candidates (encoded) not sent yet: the machine holds them back until the call is answered. */
  pendingIce: string[] = [];
  pendingIceEnd = false;
  flushScheduled = false;
  /** Our per-call ephemeral (e_c or e_r), for the §10 media keys. */
  readonly ephemeralSk = generateSecretKey();
  /** SFrame base keys for this device's send and receive directions, once both ephemerals are known. */
  keys: { send: Uint8Array; receive: Uint8Array } | undefined;
  connectedAt: number | undefined;

  constructor(
    readonly callId: string,
    readonly partyId: string,
    readonly role: CallRole,
    readonly peer: string,
    readonly media: Media,
    readonly startedAt: number,
    /** Callee: the offer and the caller device that sent it. */
    readonly offer?: { signal: Extract<CallSignal, { op: 'offer' }>; fromDevice: number },
  ) {}

  setKeys(k: CallMediaKeys): void {
    this.keys = this.role === 'caller' ? { send: k.kC, receive: k.kR } : { send: k.kR, receive: k.kC };
  }

  get active(): boolean {
    return this.machine !== undefined && !this.machine.ended;
  }
}

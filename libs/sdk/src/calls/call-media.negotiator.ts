import { addr, b64uDecode, parseDeviceCertificate, sframeKeysForCall, type CallMediaKeys } from '@umbra/crypto';
import type { TurnCredentials } from '@umbra/protocol';
import type { CallSession } from './call.session';
import type { CallsMessenger } from './call-signals.channel';
import { encodeCandidate, type CallPeerConfig, type CallPeerConnection, type CreatePeerConnection } from './peer-connection';

const RELAYS_PATH = '/v1/calls/relays';

export interface CallMediaOptions {
  messenger: Pick<CallsMessenger, 'client' | 'deviceList'>;
  createPeerConnection: CreatePeerConnection;
  /** Test hook: rewrites an SDP this device sends, before it is encrypted. */
  rewriteOutgoingSdp?: (sdp: string, op: 'offer' | 'answer') => string;
}

/** What a call's peer connection reports; the coordinator decides what it means for the call. */
export interface CallMediaEvents {
  /** A local candidate (or the end of them) was added to the session's pending ICE. */
  candidates(): void;
  connectionState(pc: CallPeerConnection): void;
}

/**
 * The media side of a call: a relay-only peer connection with this account's TURN credentials,
 * offers and answers (ICE restarts included), local candidates and the §10 SFrame keys.
 */
export class CallMediaNegotiator {
  constructor(private readonly opts: CallMediaOptions) {}

  async open(s: CallSession, events: CallMediaEvents): Promise<CallPeerConnection> {
    const relays = await this.opts.messenger.client.api<TurnCredentials>('GET', RELAYS_PATH);
    const config: CallPeerConfig = { iceServers: [{ urls: relays.urls, username: relays.username, credential: relays.password }], iceTransportPolicy: 'relay' };
    const pc = await this.opts.createPeerConnection(config, { callId: s.callId, peer: s.peer, media: s.media, role: s.role });
    s.pc = pc;
    pc.onicecandidate = (ev) => {
      if (ev.candidate?.candidate) s.pendingIce.push(encodeCandidate(ev.candidate));
      else s.pendingIceEnd = true;
      events.candidates();
    };
    pc.onconnectionstatechange = () => events.connectionState(pc);
    return pc;
  }

  /** Our offer (a new one with fresh ICE credentials for `iceRestart`), set locally; the SDP to send. */
  async offer(pc: CallPeerConnection, iceRestart = false): Promise<string> {
    const offer = await (iceRestart ? pc.createOffer({ iceRestart: true }) : pc.createOffer());
    await pc.setLocalDescription({ type: 'offer', sdp: offer.sdp ?? '' });
    return this.outgoing(pc.localDescription?.sdp ?? offer.sdp ?? '', 'offer');
  }

  /** Takes the peer's offer and makes our answer; the SDP to send. */
  async answer(pc: CallPeerConnection, offerSdp: string): Promise<string> {
    await pc.setRemoteDescription({ type: 'offer', sdp: offerSdp });
    const answer = await pc.createAnswer();
    await pc.setLocalDescription({ type: 'answer', sdp: answer.sdp ?? '' });
    return this.outgoing(pc.localDescription?.sdp ?? answer.sdp ?? '', 'answer');
  }

  /** §10 media keys from our ephemeral and the peer device's, bound to both devices' addresses. */
  async keys(s: CallSession, peerEphemeral: string, peerDevice: number): Promise<CallMediaKeys> {
    const own = parseDeviceCertificate(this.opts.messenger.client.identity.device.certificate);
    const peerCert = (await this.opts.messenger.deviceList(s.peer)).devices.find((d) => d.deviceId === peerDevice);
    if (!peerCert) throw new Error('the peer device is not in its verified list');
    const [caller, callee] = s.role === 'caller' ? [own, peerCert] : [peerCert, own];
    return sframeKeysForCall({ callId: BigInt(`0x${s.callId}`), ownEphemeralSk: s.ephemeralSk, peerEphemeralPk: b64uDecode(peerEphemeral), callerAddr: addr(caller), calleeAddr: addr(callee) });
  }

  close(s: CallSession): void {
    const pc = s.pc;
    if (!pc) return;
    pc.onicecandidate = null;
    pc.onconnectionstatechange = null;
    Promise.resolve()
      .then(() => pc.close())
      .catch(() => undefined);
  }

  private outgoing(sdp: string, op: 'offer' | 'answer'): string {
    return this.opts.rewriteOutgoingSdp ? this.opts.rewriteOutgoingSdp(sdp, op) : sdp;
  }
}

import type { CallRole } from './call.machine';
import type { Media } from './call-signal';

/**
 * What the calls module uses of an RTCPeerConnection: the browser's native one and werift's (Node)
 * both fit, so the same code runs in the web client and in the Node tests. The application creates it
 * (with a fresh certificate per call, its tracks or transceivers, any SFrame transform) in
 * `createPeerConnection`; the calls module only negotiates.
 */
type Handler<E> = { bivarianceHack(ev: E): void }['bivarianceHack'];

/** A local candidate as the connection reports it. */
export interface LocalIceCandidate {
  candidate: string;
  sdpMid?: string | null;
  sdpMLineIndex?: number | null;
}
/** A remote candidate as the connection takes it. */
export interface RemoteIceCandidate {
  candidate: string;
  sdpMid?: string;
  sdpMLineIndex?: number;
}
export interface CallSessionDescription {
  type: 'offer' | 'answer';
  sdp: string;
}

export interface CallPeerConnection {
  readonly connectionState: string;
  readonly localDescription: { sdp: string } | null;
  onicecandidate: Handler<{ candidate?: LocalIceCandidate | null }> | null | undefined;
  onconnectionstatechange: Handler<unknown> | null | undefined;
  createOffer(options?: { iceRestart?: boolean }): Promise<{ sdp?: string }>;
  createAnswer(): Promise<{ sdp?: string }>;
  setLocalDescription(description: CallSessionDescription): Promise<unknown>;
  setRemoteDescription(description: CallSessionDescription): Promise<unknown>;
  addIceCandidate(candidate: RemoteIceCandidate): Promise<void>;
  close(): unknown;
}

/** The relay-only configuration the calls module asks for: TURN from GET /v1/calls/relays. */
export interface CallPeerConfig {
  iceServers: { urls: string[]; username: string; credential: string }[];
  iceTransportPolicy: 'relay';
}

export interface CallPeerContext {
  callId: string;
  peer: string;
  media: Media;
  role: CallRole;
}

export type CreatePeerConnection = (config: CallPeerConfig, ctx: CallPeerContext) => CallPeerConnection | Promise<CallPeerConnection>;

/** Candidates travel in `ice.candidates[]` as JSON strings of {candidate, sdpMid, sdpMLineIndex}. */
export function encodeCandidate(c: LocalIceCandidate): string {
  return JSON.stringify({ candidate: c.candidate, ...(c.sdpMid != null ? { sdpMid: c.sdpMid } : {}), ...(c.sdpMLineIndex != null ? { sdpMLineIndex: c.sdpMLineIndex } : {}) });
}

export function decodeCandidate(s: string): RemoteIceCandidate | undefined {
  try {
    const v = JSON.parse(s) as Record<string, unknown>;
    if (typeof v.candidate !== 'string') return undefined;
    return {
      candidate: v.candidate,
      ...(typeof v.sdpMid === 'string' ? { sdpMid: v.sdpMid } : {}),
      ...(typeof v.sdpMLineIndex === 'number' ? { sdpMLineIndex: v.sdpMLineIndex } : {}),
    };
  } catch {
    return undefined;
  }
}

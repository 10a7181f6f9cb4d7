import type {
  CallInfo,
  CallLogEntry,
  CallPeerConfig,
  CallPeerConnection,
  CallPeerContext,
  CallState,
  EndReason,
  Media,
  UmbraEventOf,
} from '@umbra/sdk';
import { webCallMedia, type CallMediaTarget } from './call-media.service';
import { CallE2ee, E2EE_UNSUPPORTED, e2eeSupported } from './call-e2ee.service';
import type { SframeCounts } from './call-sframe.worker';
import { describeError, type WebSession } from './session.service';

declare global {
  interface ImportMetaEnv {
    /** Set when the bundle is built for the browser tests: enables `window.__umbraCallTest`. */
    readonly VITE_UMBRA_TEST_HOOKS?: string;
  }
  interface ImportMeta {
    readonly env: ImportMetaEnv;
  }
}

/** Test hooks (test builds only): a receive key with one bit flipped, to prove SFrame is on the media path. */
interface CallTestHooks {
  corruptReceiveKey?: boolean;
}
const testHooks = (): CallTestHooks | undefined =>
  import.meta.env.VITE_UMBRA_TEST_HOOKS === '1' ? (globalThis as { __umbraCallTest?: CallTestHooks }).__umbraCallTest : undefined;

/** The states the page shows: the SDK's, and `idle` when there is no call. */
export type CallStateName = 'idle' | CallState;

/** What the connection's getStats() says, shown in the call screen. */
export interface CallStats {
  /** Candidate types of the selected pair (`relay` through TURN). */
  localCandidate?: string;
  remoteCandidate?: string;
  framesDecoded: number;
  packetsReceived: number;
}

export interface CurrentCall {
  callId?: string;
  peer: string;
  media: Media;
  direction: 'incoming' | 'outgoing';
  state: CallState;
  endReason?: EndReason;
  error?: string;
  local?: MediaStream;
  remote?: MediaStream;
  muted: boolean;
  cameraOff: boolean;
  connectedAt?: number;
  stats: CallStats;
  e2ee?: SframeCounts;
}

const STATS_MS = 1000;

/**
 * Calls in the page over `umbra.calls`, with the browser's own WebRTC: relay-only ICE with TURN from
 * the gateway (the SDK asks for it), a fresh certificate per call, and every sender and receiver behind
 * an SFrame transform (call-e2ee.service.ts). One call at a time.
 */
export class WebCalls implements CallMediaTarget {
  current: CurrentCall | undefined;
  history: CallLogEntry[] = [];
  private pc: RTCPeerConnection | undefined;
  private e2ee: CallE2ee | undefined;
  private statsTimer: ReturnType<typeof setInterval> | undefined;
  private readonly listeners = new Set<() => void>();
  private readonly stopEvents: () => void;

  constructor(private readonly session: WebSession) {
    webCallMedia.target = this;
    this.stopEvents = session.umbra.on('call', (e) => void this.event(e));
    // A call that rang before this screen existed (an offer fetched at start-up).
    const ringing = session.umbra.calls.active().find((c) => c.state === 'ringing');
    if (ringing) this.incoming(ringing);
    void this.refreshHistory();
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get state(): CallStateName {
    return this.current?.state ?? 'idle';
  }

  get busy(): boolean {
    return this.current !== undefined && this.current.state !== 'ended';
  }

  /** Calls `peer` (an account id); the camera and microphone are asked for first. A failure shows as an ended call. */
  async call(peer: string, media: Media): Promise<void> {
    if (this.busy) return;
    const c: CurrentCall = { peer, media, direction: 'outgoing', state: 'outgoing', muted: false, cameraOff: false, stats: { framesDecoded: 0, packetsReceived: 0 } };
    this.current = c;
    this.changed();
    try {
      if (!e2eeSupported()) throw new Error(E2EE_UNSUPPORTED);
      c.local = await navigator.mediaDevices.getUserMedia({ audio: true, video: media === 'video' });
      this.changed();
      c.callId = await this.session.umbra.calls.start(peer, { media });
    } catch (err) {
      if (this.current === c) {
        this.release();
        Object.assign(c, { state: 'ended', endReason: 'failed', error: describeError(err) });
      }
      this.changed();
    }
  }

  async answer(): Promise<void> {
    const c = this.current;
    if (!c?.callId || c.state !== 'ringing') return;
    if (!e2eeSupported()) {
      c.error = E2EE_UNSUPPORTED;
      return this.session.umbra.calls.decline(c.callId);
    }
    try {
      c.local = await navigator.mediaDevices.getUserMedia({ audio: true, video: c.media === 'video' });
    } catch (err) {
      c.error = `No camera or microphone: ${describeError(err)}`;
      return this.session.umbra.calls.decline(c.callId);
    }
    this.changed();
    await this.session.umbra.calls.answer(c.callId);
  }

  async decline(): Promise<void> {
    if (this.current?.callId) await this.session.umbra.calls.decline(this.current.callId);
  }

  async hangup(): Promise<void> {
    if (this.current?.callId) await this.session.umbra.calls.hangup(this.current.callId);
  }

  toggleMute(): void {
    const c = this.current;
    if (!c?.local) return;
    c.muted = !c.muted;
    for (const t of c.local.getAudioTracks()) t.enabled = !c.muted;
    this.changed();
  }

  toggleCamera(): void {
    const c = this.current;
    if (!c?.local) return;
    c.cameraOff = !c.cameraOff;
    for (const t of c.local.getVideoTracks()) t.enabled = !c.cameraOff;
    this.changed();
  }

  /** Closes the screen of an ended call. */
  dismiss(): void {
    if (this.current?.state === 'ended') this.current = undefined;
    this.changed();
  }

  /** Finished calls with `peer`, oldest first (for the conversation). */
  historyWith(peer: string): CallLogEntry[] {
    return this.history.filter((e) => e.peer === peer).reverse();
  }

  /** Detaches the screen; the SDK's calls live on with the Umbra instance. */
  close(): void {
    this.stopEvents();
    if (webCallMedia.target === this) webCallMedia.target = undefined;
    this.release();
  }

  async createPeerConnection(config: CallPeerConfig, ctx: CallPeerContext): Promise<CallPeerConnection> {
    const c = this.current;
    if (!c?.local) throw new Error('no local media for the call');
    c.callId = ctx.callId;
    const certificate = await RTCPeerConnection.generateCertificate({ name: 'ECDSA', namedCurve: 'P-256' } as EcKeyGenParams);
    const pc = new RTCPeerConnection({ ...config, certificates: [certificate] });
    const e2ee = new CallE2ee(() => {
      if (this.current === c) c.e2ee = e2ee.counts;
      this.changed();
    });
    for (const track of c.local.getTracks()) e2ee.protect(pc.addTrack(track, c.local), 'send');
    // Receivers get their transform before any remote description exists, so no frame passes in clear.
    for (const t of pc.getTransceivers()) e2ee.protect(t.receiver, 'receive');
    if (ctx.role === 'caller') preferVp8(pc);
    c.remote = new MediaStream();
    pc.ontrack = (ev) => {
      if (!ev.receiver.transform) e2ee.protect(ev.receiver, 'receive');
      c.remote?.addTrack(ev.track);
      this.changed();
    };
    this.pc = pc;
    this.e2ee = e2ee;
    this.statsTimer = setInterval(() => void this.pollStats(c), STATS_MS);
    return pc;
  }

  private async event(e: UmbraEventOf<'call'>): Promise<void> {
    if (e.state === 'ringing' && e.direction === 'incoming') return this.incoming(e);
    const c = this.current;
    if (c?.callId === e.callId) {
      c.state = e.state;
      if (e.state === 'connected') c.connectedAt ??= Date.now();
      if (e.state === 'ended') {
        c.endReason = e.reason ?? 'hangup';
        this.release();
      }
      this.changed();
    }
    if (e.state === 'ended') await this.refreshHistory();
  }

  private incoming(info: Pick<CallInfo, 'callId' | 'peer' | 'media'>): void {
    if (this.busy) return;
    this.current = { callId: info.callId, peer: info.peer, media: info.media, direction: 'incoming', state: 'ringing', muted: false, cameraOff: false, stats: { framesDecoded: 0, packetsReceived: 0 } };
    this.changed();
  }

  /** The §10 keys, once both ephemerals are known (the answer, on either side), before media flows. */
  mediaKeys(call: CallInfo, keys: { send: Uint8Array; receive: Uint8Array }): void {
    if (this.current?.callId !== call.callId || !this.e2ee) return;
    const receive = keys.receive.slice();
    if (testHooks()?.corruptReceiveKey) receive[0] = (receive[0] ?? 0) ^ 1;
    this.e2ee.setKeys(call.direction === 'outgoing' ? 'caller' : 'callee', { send: keys.send, receive });
  }

  private async refreshHistory(): Promise<void> {
    this.history = await this.session.umbra.calls.history();
    this.changed();
  }

  private async pollStats(c: CurrentCall): Promise<void> {
    const pc = this.pc;
    if (!pc || this.current !== c) return;
    const report = await pc.getStats();
    const stats: CallStats = { framesDecoded: 0, packetsReceived: 0 };
    let pairId: string | undefined;
    report.forEach((s: Record<string, unknown>) => {
      if (s.type === 'transport' && typeof s.selectedCandidatePairId === 'string') pairId = s.selectedCandidatePairId;
      if (s.type === 'inbound-rtp') {
        stats.packetsReceived += Number(s.packetsReceived ?? 0);
        if (s.kind === 'video') stats.framesDecoded += Number(s.framesDecoded ?? 0);
      }
    });
    const pair = pairId ? (report.get(pairId) as Record<string, unknown> | undefined) : undefined;
    const candidateType = (id: unknown) => (report.get(String(id)) as { candidateType?: string } | undefined)?.candidateType;
    if (pair) {
      const local = candidateType(pair.localCandidateId);
      const remote = candidateType(pair.remoteCandidateId);
      if (local) stats.localCandidate = local;
      if (remote) stats.remoteCandidate = remote;
    }
    c.stats = stats;
    this.changed();
  }

  /** Stops the camera and microphone and the call's connection, worker and stats. */
  private release(): void {
    for (const t of this.current?.local?.getTracks() ?? []) t.stop();
    if (this.statsTimer) clearInterval(this.statsTimer);
    this.statsTimer = undefined;
    this.pc = undefined;
    this.e2ee?.close();
    this.e2ee = undefined;
  }

  private changed(): void {
    for (const l of this.listeners) l();
  }
}

/** SFrame leaves VP8's frame header in clear for the depacketizer (call-sframe.worker.ts), so video is VP8. */
function preferVp8(pc: RTCPeerConnection): void {
  const codecs = RTCRtpReceiver.getCapabilities('video')?.codecs.filter((c) => c.mimeType === 'video/VP8' || c.mimeType === 'video/rtx') ?? [];
  if (!codecs.some((c) => c.mimeType === 'video/VP8')) return;
  for (const t of pc.getTransceivers()) if (t.receiver.track.kind === 'video') t.setCodecPreferences(codecs);
}

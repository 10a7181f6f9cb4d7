import type { CallPeerConnection, CreatePeerConnection } from '@umbra/sdk';

/** G.711 µ-law (PCMU, RTP payload type 0): 8 kHz, 160 samples per 20 ms packet. */
const PCMU_PAYLOAD_TYPE = 0;
const SAMPLES_PER_PACKET = 160;
const PACKET_MS = 20;

function muLaw(sample: number): number {
  const BIAS = 0x84;
  const sign = sample < 0 ? 0x80 : 0;
  let s = Math.min(Math.abs(sample), 32_635) + BIAS;
  let exponent = 7;
  for (let mask = 0x4000; (s & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (s >> (exponent + 3)) & 0x0f;
  s = ~(sign | (exponent << 4) | mantissa);
  return s & 0xff;
}

/** One 20 ms packet of a sine tone, starting at sample `offset`. */
export function tonePacket(offset: number, hz = 440): Buffer {
  const out = Buffer.alloc(SAMPLES_PER_PACKET);
  for (let i = 0; i < SAMPLES_PER_PACKET; i++) out[i] = muLaw(Math.round(8000 * Math.sin((2 * Math.PI * hz * (offset + i)) / 8000)));
  return out;
}

/** Media counters of one call. */
export interface CallMediaStats {
  sent: number;
  received: number;
}

/**
 * RTCPeerConnections for Node (werift): a PCMU audio track that plays a generated tone once the
 * call connects (and a silent video transceiver for video calls), counting RTP packets both ways.
 * werift is loaded on first use: a CLI installed without it can still list calls.
 */
export class WeriftCallMedia {
  private readonly stats = new Map<string, CallMediaStats>();
  private readonly timers = new Set<ReturnType<typeof setInterval>>();

  constructor(private readonly opts: { tone?: boolean } = {}) {}

  readonly createPeerConnection: CreatePeerConnection = async (config, ctx) => {
    const w = await loadWerift();
    const pc = new w.RTCPeerConnection({
      iceServers: config.iceServers,
      iceTransportPolicy: config.iceTransportPolicy,
      codecs: {
        audio: [new w.RTCRtpCodecParameters({ mimeType: 'audio/PCMU', clockRate: 8000, channels: 1, payloadType: PCMU_PAYLOAD_TYPE })],
        video: [new w.RTCRtpCodecParameters({ mimeType: 'video/VP8', clockRate: 90_000, payloadType: 96 })],
      },
    });
    const stats: CallMediaStats = { sent: 0, received: 0 };
    this.stats.set(ctx.callId, stats);
    const audio = new w.MediaStreamTrack({ kind: 'audio' });
    pc.addTransceiver(audio, { direction: 'sendrecv' });
    if (ctx.media === 'video') pc.addTransceiver('video', { direction: 'sendrecv' });
    pc.onTrack.subscribe((remote) => remote.onReceiveRtp.subscribe(() => void stats.received++));
    if (this.opts.tone !== false) {
      let seq = 0;
      const timer = setInterval(() => {
        if (pc.connectionState === 'closed') return this.stop(timer);
        if (pc.connectionState !== 'connected') return;
        const header = new w.RtpHeader({ payloadType: PCMU_PAYLOAD_TYPE, sequenceNumber: seq & 0xffff, timestamp: (seq * SAMPLES_PER_PACKET) >>> 0, marker: seq === 0 });
        audio.writeRtp(new w.RtpPacket(header, tonePacket(seq * SAMPLES_PER_PACKET)));
        seq++;
        stats.sent++;
      }, PACKET_MS);
      this.timers.add(timer);
    }
    return pc as unknown as CallPeerConnection;
  };

  /** RTP packets sent and received in a call so far. */
  statsOf(callId: string): CallMediaStats | undefined {
    return this.stats.get(callId);
  }

  close(): void {
    for (const t of this.timers) this.stop(t);
  }

  private stop(timer: ReturnType<typeof setInterval>): void {
    clearInterval(timer);
    this.timers.delete(timer);
  }
}

type Werift = typeof import('werift');
let werift: Promise<Werift> | undefined;

function loadWerift(): Promise<Werift> {
  werift ??= import('werift').catch((err: unknown) => {
    werift = undefined;
    throw new Error(`calls from the CLI need the werift package (npm install werift): ${err instanceof Error ? err.message : String(err)}`);
  });
  return werift;
}

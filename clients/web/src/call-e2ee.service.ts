import type { SframeCounts, SframeKeysMessage, SframeTransformOptions } from './call-sframe.worker';

/** KIDs of the two directions (§10.2 leaves them to the calls module): 0 carries k_c, 1 carries k_r. */
export const CALLER_KID = 0;
export const CALLEE_KID = 1;

/** Media end-to-end encryption needs WebRTC Encoded Transform in a worker (RTCRtpScriptTransform). */
export function e2eeSupported(): boolean {
  return typeof RTCRtpScriptTransform === 'function' && typeof Worker === 'function';
}

export const E2EE_UNSUPPORTED =
  'This browser cannot encrypt call media end to end (no WebRTC Encoded Transform), so Umbra does not place or answer calls in it.';

/**
 * One call's SFrame worker (RFC 9605 over RTCRtpScriptTransform): every sender and receiver of the call's
 * connection gets a transform running in it; the §10 keys arrive once both ephemerals are known.
 */
export class CallE2ee {
  counts: SframeCounts = { type: 'counts', encrypted: 0, decrypted: 0, rejected: 0, replayed: 0, keyless: 0 };
  private readonly worker = new Worker(new URL('./call-sframe.worker.ts', import.meta.url), { type: 'module', name: 'call-sframe' });
  private keyed = false;

  constructor(onCounts: () => void) {
    this.worker.onmessage = (e: MessageEvent<SframeCounts>) => {
      this.counts = e.data;
      onCounts();
    };
  }

  get hasKeys(): boolean {
    return this.keyed;
  }

  protect(target: RTCRtpSender | RTCRtpReceiver, side: SframeTransformOptions['side']): void {
    target.transform = new RTCRtpScriptTransform(this.worker, { side } satisfies SframeTransformOptions);
  }

  setKeys(role: 'caller' | 'callee', keys: { send: Uint8Array; receive: Uint8Array }): void {
    if (this.keyed) return;
    this.keyed = true;
    const [sendKid, receiveKid] = role === 'caller' ? [CALLER_KID, CALLEE_KID] : [CALLEE_KID, CALLER_KID];
    this.worker.postMessage({ type: 'keys', send: keys.send, receive: keys.receive, sendKid, receiveKid } satisfies SframeKeysMessage);
  }

  close(): void {
    this.worker.terminate();
  }
}

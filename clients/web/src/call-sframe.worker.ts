import { CryptoError, SframeContext } from '@umbra/crypto';

/** What the page sends the worker: this device's §10 base keys and the KIDs of the two directions. */
export interface SframeKeysMessage {
  type: 'keys';
  send: Uint8Array;
  receive: Uint8Array;
  sendKid: number;
  receiveKid: number;
}
/** What the worker reports about once a second: frames through each side, and frames it dropped. */
export interface SframeCounts {
  type: 'counts';
  encrypted: number;
  decrypted: number;
  /** Received frames that failed authentication (wrong key, tampering). */
  rejected: number;
  /** Received frames whose CTR was already accepted (e.g. a redundant audio copy) or is behind the window. */
  replayed: number;
  /** Frames dropped because the keys had not arrived yet. */
  keyless: number;
}
export interface SframeTransformOptions {
  side: 'send' | 'receive';
}

interface EncodedFrame {
  data: ArrayBuffer;
  /** Video only: 'key' | 'delta' | 'empty'. */
  type?: string;
}
interface Transformer {
  readonly options: SframeTransformOptions;
  readonly readable: ReadableStream<EncodedFrame>;
  readonly writable: WritableStream<EncodedFrame>;
}
// The worker's global scope (the DOM and WebWorker libs cannot both be loaded in one program).
const scope = self as unknown as {
  onmessage: ((e: MessageEvent<SframeKeysMessage>) => void) | null;
  onrtctransform: ((e: { transformer: Transformer }) => void) | null;
  postMessage(m: SframeCounts): void;
};

// Audio and video frames share one send KID and its counter, so the receive window spans both streams.
const REPLAY_WINDOW = 2048;
let context: SframeContext | undefined;
const counts: SframeCounts = { type: 'counts', encrypted: 0, decrypted: 0, rejected: 0, replayed: 0, keyless: 0 };

/**
 * Bytes left in clear before the SFrame ciphertext, authenticated as SFrame metadata: Chromium's VP8
 * depacketizer reads the frame tag (3 bytes) and a key frame's dimensions (10 bytes) to assemble frames.
 */
function clearPrefix(frame: EncodedFrame): number {
  if (frame.type === 'key') return 10;
  if (frame.type === 'delta') return 3;
  return frame.type === 'empty' ? 0 : 1;
}

function encrypt(frame: EncodedFrame): boolean {
  if (!context) return false;
  const data = new Uint8Array(frame.data);
  const n = Math.min(clearPrefix(frame), data.length);
  const prefix = data.subarray(0, n);
  const sealed = context.encrypt(sendKid, data.subarray(n), prefix);
  const out = new Uint8Array(n + sealed.length);
  out.set(prefix);
  out.set(sealed, n);
  frame.data = out.buffer;
  counts.encrypted++;
  return true;
}

function decrypt(frame: EncodedFrame): boolean {
  if (!context) return false;
  const data = new Uint8Array(frame.data);
  const n = Math.min(clearPrefix(frame), data.length);
  const prefix = data.subarray(0, n);
  try {
    const { plaintext } = context.decrypt(data.subarray(n), prefix);
    const out = new Uint8Array(n + plaintext.length);
    out.set(prefix);
    out.set(plaintext, n);
    frame.data = out.buffer;
    counts.decrypted++;
    return true;
  } catch (err) {
    if (err instanceof CryptoError && err.code === 'REPLAY') counts.replayed++;
    else counts.rejected++;
    return false;
  }
}

let sendKid = 0;

scope.onmessage = (e) => {
  const m = e.data;
  if (m.type !== 'keys') return;
  const c = new SframeContext({ replayWindow: REPLAY_WINDOW });
  c.addSendKey(m.sendKid, m.send);
  c.addReceiveKey(m.receiveKid, m.receive);
  sendKid = m.sendKid;
  context = c;
};

scope.onrtctransform = ({ transformer }) => {
  const side = transformer.options.side;
  const step = side === 'send' ? encrypt : decrypt;
  transformer.readable
    .pipeThrough(
      new TransformStream<EncodedFrame, EncodedFrame>({
        transform(frame, controller) {
          if (frame.data.byteLength === 0) return controller.enqueue(frame);
          if (!context) {
            counts.keyless++;
            return;
          }
          // A frame that cannot be sealed or opened is dropped, never passed on in clear.
          try {
            if (step(frame)) controller.enqueue(frame);
          } catch {
            counts.rejected++;
          }
        },
      }),
    )
    .pipeTo(transformer.writable)
    // The pipe errors when the call's connection closes; there is nothing left to protect then.
    .catch(() => undefined);
};

setInterval(() => scope.postMessage({ ...counts }), 500);

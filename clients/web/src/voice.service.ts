/** Containers MediaRecorder may offer, best first (Chromium and Firefox: WebM/Opus; Safari: MP4/AAC). */
const TYPES = ['audio/webm;codecs=opus', 'audio/webm', 'audio/ogg;codecs=opus', 'audio/mp4'];

/** A voice message being recorded from the microphone (MediaRecorder). */
export class VoiceRecording {
  private readonly chunks: Blob[] = [];
  private readonly started = performance.now();

  private constructor(
    private readonly recorder: MediaRecorder,
    private readonly stream: MediaStream,
  ) {
    recorder.addEventListener('dataavailable', (e) => {
      if (e.data.size > 0) this.chunks.push(e.data);
    });
  }

  /** Asks for the microphone and starts recording; rejects with a message a person understands. */
  static async start(): Promise<VoiceRecording> {
    if (!navigator.mediaDevices?.getUserMedia || typeof MediaRecorder === 'undefined') throw new Error('This browser cannot record audio.');
    let stream: MediaStream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (err) {
      throw new Error(err instanceof DOMException && err.name === 'NotAllowedError' ? 'Microphone access was refused.' : 'No microphone is available.');
    }
    const mimeType = TYPES.find((t) => MediaRecorder.isTypeSupported(t));
    const recorder = new MediaRecorder(stream, mimeType ? { mimeType } : {});
    const rec = new VoiceRecording(recorder, stream);
    recorder.start(250);
    return rec;
  }

  get elapsedMs(): number {
    return performance.now() - this.started;
  }

  /** Stops and returns the recording as a file, with its playing time. */
  stop(): Promise<{ file: File; durationMs: number }> {
    const durationMs = Math.round(this.elapsedMs);
    return new Promise((resolve, reject) => {
      this.recorder.addEventListener('stop', () => {
        this.release();
        const type = (this.recorder.mimeType || 'audio/webm').split(';')[0]!;
        const ext = type === 'audio/mp4' ? 'm4a' : type === 'audio/ogg' ? 'ogg' : 'webm';
        if (this.chunks.length === 0) reject(new Error('Nothing was recorded.'));
        else resolve({ file: new File(this.chunks, `voice-${new Date().toISOString().replace(/[:.]/g, '-')}.${ext}`, { type }), durationMs });
      });
      this.recorder.stop();
    });
  }

  cancel(): void {
    if (this.recorder.state !== 'inactive') this.recorder.stop();
    this.release();
  }

  private release(): void {
    for (const t of this.stream.getTracks()) t.stop();
  }
}

/** "m:ss" for a playing time in ms. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

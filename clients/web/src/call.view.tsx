import type { CallLogEntry } from '@umbra/sdk';
import { useEffect, useRef, useState } from 'preact/hooks';
import './call.css';
import type { CurrentCall, WebCalls } from './calls.service';

/** Re-renders on every change of the page's call. */
export function useCalls(calls: WebCalls): void {
  const [, setTick] = useState(0);
  useEffect(() => calls.subscribe(() => setTick((n) => n + 1)), [calls]);
}

const PHONE =
  'M22 16.9v3a2 2 0 0 1-2.2 2 19.8 19.8 0 0 1-8.6-3.1 19.5 19.5 0 0 1-6-6A19.8 19.8 0 0 1 2.1 4.2 2 2 0 0 1 4.1 2h3a2 2 0 0 1 2 1.7c.1.9.4 1.8.7 2.7a2 2 0 0 1-.5 2.1L8 9.8a16 16 0 0 0 6 6l1.3-1.3a2 2 0 0 1 2.1-.4c.9.3 1.8.6 2.7.7a2 2 0 0 1 1.7 2z';
const CAMERA = 'M23 7l-7 5 7 5V7zM3 5h11a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H3a2 2 0 0 1-2-2V7a2 2 0 0 1 2-2z';

function Glyph({ d }: { d: string }) {
  return (
    <svg class="glyph" viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false">
      <path d={d} fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" />
    </svg>
  );
}

/** The audio and video call buttons of a 1:1 conversation's header. */
export function CallButtons({ calls, peer, label }: { calls: WebCalls; peer: string; label: string }) {
  useCalls(calls);
  return (
    <span class="call-buttons">
      <button type="button" class="link" data-testid="call-audio" aria-label={`Audio call ${label}`} title="Audio call" disabled={calls.busy} onClick={() => void calls.call(peer, 'audio')}>
        <Glyph d={PHONE} />
      </button>
      <button type="button" class="link" data-testid="call-video" aria-label={`Video call ${label}`} title="Video call" disabled={calls.busy} onClick={() => void calls.call(peer, 'video')}>
        <Glyph d={CAMERA} />
      </button>
    </span>
  );
}

const END_TEXT: Record<string, string> = {
  hangup: 'Call ended',
  remote_hangup: 'Call ended',
  declined: 'Declined',
  declined_elsewhere: 'Declined on another device',
  answered_elsewhere: 'Answered on another device',
  busy: 'Busy',
  missed: 'Missed call',
  no_answer: 'No answer',
  glare: 'Call ended',
  failed: 'Call failed',
  connection_lost: 'Connection lost',
};

export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(h > 0 ? 2 : 1, '0');
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

function useStream(stream: MediaStream | undefined) {
  const ref = useRef<HTMLVideoElement & HTMLAudioElement>(null);
  useEffect(() => {
    if (ref.current && ref.current.srcObject !== (stream ?? null)) ref.current.srcObject = stream ?? null;
  });
  return ref;
}

function useClock(active: boolean): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (!active) return;
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, [active]);
  return now;
}

/**
 * The call screen over the page: an incoming call (answer, decline), or the call itself — remote and
 * local video, state, duration, mute, camera, hang up. `call-state` reads `idle` when there is none.
 */
export function CallScreen({ calls, labelOf }: { calls: WebCalls; labelOf: (peer: string) => string }) {
  useCalls(calls);
  const c = calls.current;
  if (!c)
    return (
      <p class="visually-hidden" data-testid="call-state" role="status">
        idle
      </p>
    );
  const label = labelOf(c.peer);
  return (
    <div class="call-screen" role="dialog" aria-modal="true" aria-labelledby="call-title" data-testid={c.state === 'ringing' ? 'incoming-call' : 'in-call'}>
      {c.state === 'ringing' ? <Incoming calls={calls} call={c} label={label} /> : <InCall calls={calls} call={c} label={label} />}
    </div>
  );
}

function Incoming({ calls, call, label }: { calls: WebCalls; call: CurrentCall; label: string }) {
  const answer = useRef<HTMLButtonElement>(null);
  useEffect(() => answer.current?.focus(), []);
  return (
    <div class="call-incoming">
      <h2 id="call-title">{label}</h2>
      <p>Incoming {call.media} call</p>
      <p class="visually-hidden" data-testid="call-state" role="status">
        {call.state}
      </p>
      <div class="call-controls">
        <button type="button" class="call-decline" data-testid="decline" onClick={() => void calls.decline()}>
          Decline
        </button>
        <button type="button" class="call-answer" data-testid="answer" ref={answer} onClick={() => void calls.answer()}>
          Answer
        </button>
      </div>
    </div>
  );
}

function InCall({ calls, call, label }: { calls: WebCalls; call: CurrentCall; label: string }) {
  const remote = useStream(call.remote);
  const local = useStream(call.local);
  const now = useClock(call.state === 'connected');
  const ended = call.state === 'ended';
  const close = useRef<HTMLButtonElement>(null);
  const hangup = useRef<HTMLButtonElement>(null);
  useEffect(() => (ended ? close : hangup).current?.focus(), [ended]);
  const video = call.media === 'video';
  const s = call.stats;
  const e = call.e2ee;
  return (
    <div class={`call-in ${video ? 'video' : 'audio'} ${ended ? 'ended' : ''}`}>
      {video ? (
        <video class="call-remote" data-testid="remote-video" ref={remote} autoplay playsinline aria-label={`Video from ${label}`} />
      ) : (
        <audio data-testid="remote-video" ref={remote} autoplay />
      )}
      {video && !ended && <video class="call-local" data-testid="local-video" ref={local} autoplay playsinline muted aria-label="Your camera" />}
      <div class="call-info">
        <h2 id="call-title">{label}</h2>
        <p>
          <span data-testid="call-state" role="status">
            {call.state}
          </span>
          {call.state === 'connected' && call.connectedAt !== undefined && <span data-testid="call-duration"> · {formatDuration(now - call.connectedAt)}</span>}
          {ended && call.endReason && <span data-testid="call-end-reason"> · {END_TEXT[call.endReason] ?? call.endReason}</span>}
        </p>
        {call.error && (
          <p class="error" role="alert" data-testid="call-error">
            {call.error}
          </p>
        )}
        <p
          class="call-stats"
          data-testid="call-stats"
          data-local-candidate={s.localCandidate ?? ''}
          data-remote-candidate={s.remoteCandidate ?? ''}
          data-frames-decoded={s.framesDecoded}
          data-packets-received={s.packetsReceived}
          data-sframe-encrypted={e?.encrypted ?? 0}
          data-sframe-decrypted={e?.decrypted ?? 0}
          data-sframe-rejected={e?.rejected ?? 0}
          data-sframe-replayed={e?.replayed ?? 0}
          data-sframe-keyless={e?.keyless ?? 0}
        >
          {s.localCandidate === 'relay' ? 'Relayed' : ''}
          {e && e.decrypted > 0 ? `${s.localCandidate === 'relay' ? ' · ' : ''}End-to-end encrypted` : ''}
        </p>
      </div>
      <div class="call-controls">
        {ended ? (
          <button type="button" data-testid="call-close" ref={close} onClick={() => calls.dismiss()}>
            Close
          </button>
        ) : (
          <>
            <button type="button" class="call-toggle" data-testid="mute" aria-pressed={call.muted} onClick={() => calls.toggleMute()}>
              {call.muted ? 'Unmute' : 'Mute'}
            </button>
            {video && (
              <button type="button" class="call-toggle" data-testid="camera" aria-pressed={call.cameraOff} onClick={() => calls.toggleCamera()}>
                {call.cameraOff ? 'Camera on' : 'Camera off'}
              </button>
            )}
            <button type="button" class="call-decline" data-testid="hangup" ref={hangup} onClick={() => void calls.hangup()}>
              Hang up
            </button>
          </>
        )}
      </div>
    </div>
  );
}

const OUTCOME_TEXT: Record<string, string> = { ...END_TEXT, answered: '', hangup: 'Cancelled', remote_hangup: 'Cancelled' };

/** A finished call as a line in the conversation: missed, declined, or answered with its duration. */
export function CallEntry({ entry }: { entry: CallLogEntry }) {
  const kind = `${entry.direction === 'incoming' ? 'Incoming' : 'Outgoing'} ${entry.media} call`;
  const missed = entry.direction === 'incoming' && entry.outcome === 'missed';
  const text = missed ? `Missed ${entry.media} call` : entry.outcome === 'answered' ? `${kind} · ${formatDuration(entry.durationMs)}` : `${kind} · ${OUTCOME_TEXT[entry.outcome] ?? entry.outcome}`;
  return (
    <li class={`call-entry ${missed ? 'missed' : ''}`} data-testid="call-entry" data-outcome={entry.outcome}>
      <span>{text}</span>
      <time dateTime={new Date(entry.startedAt).toISOString()}>{new Date(entry.startedAt).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}</time>
    </li>
  );
}

/** Messages and finished calls of a conversation in time order. */
export function withCalls<M extends { at: number }>(messages: M[], entries: CallLogEntry[]): (M | CallLogEntry)[] {
  if (entries.length === 0) return messages;
  const at = (x: M | CallLogEntry) => ('callId' in x ? x.startedAt : x.at);
  return [...messages, ...entries].sort((a, b) => at(a) - at(b));
}

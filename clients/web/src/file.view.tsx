import type { HTMLAttributes, TargetedEvent } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { AttachmentPointer } from '@umbra/sdk';
import { AUTO_DOWNLOAD_BYTES, type FileService } from './files.service';
import { describeError } from './session.service';
import { VoiceRecording, formatDuration } from './voice.service';
import './file.css';

/** Re-renders on every change of the page's transfers. */
function useFiles(files: FileService): void {
  const [, setTick] = useState(0);
  useEffect(() => files.subscribe(() => setTick((n) => n + 1)), [files]);
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

/** Icons drawn inline (no emoji font needed), hidden from screen readers: the buttons carry labels. */
function Icon({ d }: { d: string }) {
  return (
    <svg class="glyph" viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false">
      <path d={d} fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" />
    </svg>
  );
}
const PAPERCLIP = 'M21 11.5l-8.6 8.6a5 5 0 0 1-7.1-7.1l8.6-8.6a3.3 3.3 0 0 1 4.7 4.7l-8.6 8.6a1.7 1.7 0 0 1-2.4-2.4l7.9-7.9';
const MICROPHONE = 'M12 3a3 3 0 0 0-3 3v6a3 3 0 0 0 6 0V6a3 3 0 0 0-3-3zM19 11a7 7 0 0 1-14 0M12 18v3';
const STOP = 'M7 7h10v10H7z';
const CLOSE = 'M6 6l12 12M18 6L6 18';

/** Sends each file; a failure is shown in the upload list (with a retry), not thrown. */
function sendAll(files: FileService, conv: string, list: File[]): void {
  for (const f of list) files.send(conv, f).catch(() => undefined);
}

/** A file or voice message in a message bubble: inline image or player once verified, else download with progress. */
export function FileBubble({ files, conv, file }: { files: FileService; conv: string; file: AttachmentPointer }) {
  useFiles(files);
  const d = files.download(file.oid);
  const kind = file.ct.startsWith('image/') ? 'image' : file.ct.startsWith('audio/') ? 'audio' : 'file';
  const name = file.name ?? (kind === 'audio' ? 'Voice message' : 'file');
  useEffect(() => {
    if (kind !== 'file' && file.size <= AUTO_DOWNLOAD_BYTES) void files.fetch(conv, file);
  }, [files, file.oid]);
  return (
    <div class="file" data-testid="file" data-kind={kind}>
      {d?.state === 'ready' && kind === 'image' && <img class="file-preview" src={d.url} alt={name} data-testid="file-preview" />}
      {d?.state === 'ready' && kind === 'audio' && <audio controls preload="metadata" src={d.url} data-testid="voice-audio" aria-label={`Voice message, ${formatDuration(file.dur ?? 0)}`} />}
      <p class="file-meta">
        <span class="file-name" data-testid="file-name">
          {kind === 'audio' ? 'Voice message' : name}
        </span>
        <span class="file-size">
          {kind === 'audio' && file.dur !== undefined ? formatDuration(file.dur) : formatBytes(file.size)}
        </span>
      </p>
      {d?.state === 'loading' && <progress data-testid="download-progress" max={d.total} value={d.done} aria-label={`Downloading ${name}`} />}
      {d?.state === 'failed' && (
        <p class="file-error" role="alert" data-testid="file-error">
          {describeError(d.error)}{' '}
          <button type="button" class="link" data-testid="file-retry" onClick={() => void files.fetch(conv, file, true)}>
            Try again
          </button>
        </p>
      )}
      {!d && (
        <button type="button" class="file-action" data-testid="file-download" onClick={() => void files.fetch(conv, file)}>
          Download
        </button>
      )}
      {d?.state === 'ready' && kind !== 'audio' && (
        <a class="file-action" href={d.url} download={name} data-testid="file-save">
          Save
        </a>
      )}
    </div>
  );
}

/** The files being sent in a conversation, with progress; those an earlier page left unfinished, to resume. */
export function UploadList({ files, conv }: { files: FileService; conv: string }) {
  useFiles(files);
  const input = useRef<HTMLInputElement>(null);
  const list = files.uploadsIn(conv);
  if (list.length === 0) return null;
  return (
    <ul class="uploads" aria-label="Files being sent">
      {list.map((u) => (
        <li key={u.key} data-testid="upload" data-state={u.state}>
          <span class="file-name">{u.name}</span>
          <span class="file-size">{formatBytes(u.size)}</span>
          {u.state === 'uploading' && (
            <progress data-testid="file-progress" aria-label={`Sending ${u.name}`} {...(u.total > 0 ? { max: u.total, value: u.done } : {})} />
          )}
          {u.state === 'interrupted' && (
            <span class="upload-note" data-testid="upload-interrupted">
              Interrupted. Pick the same file to continue where it stopped.{' '}
              <button type="button" class="link" data-testid="upload-resume" onClick={() => input.current?.click()}>
                Resume
              </button>
            </span>
          )}
          {u.state === 'failed' && (
            <span class="file-error" role="alert" data-testid="upload-error">
              Not sent: {describeError(u.error)}{' '}
              {u.file && (
                <button type="button" class="link" data-testid="upload-retry" onClick={() => sendAll(files, conv, [u.file!])}>
                  Try again
                </button>
              )}
            </span>
          )}
          {u.state !== 'uploading' && (
            <button type="button" class="link" data-testid="upload-discard" onClick={() => void files.discard(u.key).catch(() => undefined)}>
              Discard
            </button>
          )}
        </li>
      ))}
      <input ref={input} type="file" hidden aria-label="File to resume" onChange={(e) => pick(e, (l) => sendAll(files, conv, l))} />
    </ul>
  );
}

function pick(e: TargetedEvent<HTMLInputElement>, then: (files: File[]) => void): void {
  const list = [...(e.currentTarget.files ?? [])];
  e.currentTarget.value = '';
  if (list.length > 0) then(list);
}

/** The composer's paper clip: a file picker (any type, several at once). */
export function AttachButton({ files, conv }: { files: FileService; conv: string }) {
  const input = useRef<HTMLInputElement>(null);
  return (
    <>
      <button type="button" class="icon" data-testid="attach" aria-label="Attach files" title="Attach files" onClick={() => input.current?.click()}>
        <Icon d={PAPERCLIP} />
      </button>
      <input ref={input} type="file" multiple hidden aria-label="Files to send" onChange={(e) => pick(e, (l) => sendAll(files, conv, l))} />
    </>
  );
}

/** Records a voice message (MediaRecorder) and sends it as an encrypted attachment when stopped. */
export function VoiceButton({ files, conv, onError }: { files: FileService; conv: string; onError: (message: string) => void }) {
  const [rec, setRec] = useState<VoiceRecording | undefined>();
  const [, setTick] = useState(0);
  useEffect(() => {
    if (!rec) return;
    const t = setInterval(() => setTick((n) => n + 1), 500);
    return () => {
      clearInterval(t);
      rec.cancel();
    };
  }, [rec]);

  const toggle = async () => {
    if (!rec) {
      try {
        setRec(await VoiceRecording.start());
      } catch (err) {
        onError(describeError(err));
      }
      return;
    }
    const stopping = rec.stop();
    setRec(undefined);
    try {
      const { file, durationMs } = await stopping;
      // A failed send is listed with the uploads, with a retry.
      await files.send(conv, file, { durationMs }).catch(() => undefined);
    } catch (err) {
      onError(describeError(err));
    }
  };

  return (
    <>
      {rec && (
        <span class="recording" role="status" data-testid="voice-elapsed">
          {formatDuration(rec.elapsedMs)}
        </span>
      )}
      <button
        type="button"
        class="icon"
        data-testid="voice-record"
        aria-pressed={rec !== undefined}
        aria-label={rec ? 'Stop and send the voice message' : 'Record a voice message'}
        title={rec ? 'Stop and send' : 'Record a voice message'}
        onClick={() => void toggle()}
      >
        <Icon d={rec ? STOP : MICROPHONE} />
      </button>
      {rec && (
        <button type="button" class="icon" data-testid="voice-cancel" aria-label="Discard the recording" onClick={() => setRec(undefined)}>
          <Icon d={CLOSE} />
        </button>
      )}
    </>
  );
}

/** Drag and drop of files onto a chat: props for its root element. */
export function useFileDrop(files: FileService, conv: string): HTMLAttributes<HTMLDivElement> {
  const [over, setOver] = useState(false);
  const hasFiles = (e: { dataTransfer: DataTransfer | null }) => e.dataTransfer?.types.includes('Files') ?? false;
  return {
    onDragOver: (e) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      e.dataTransfer!.dropEffect = 'copy';
      if (!over) setOver(true);
    },
    onDragLeave: (e) => {
      if (!(e.relatedTarget instanceof Node && e.currentTarget.contains(e.relatedTarget))) setOver(false);
    },
    onDrop: (e) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      setOver(false);
      sendAll(files, conv, [...(e.dataTransfer?.files ?? [])]);
    },
    ...(over ? { 'data-dropping': 'true' } : {}),
  };
}

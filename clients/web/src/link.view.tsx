import { LinkDeclinedError, type LinkCodeInfo, type LinkOffer } from '@umbra/sdk';
import { useEffect, useRef, useState } from 'preact/hooks';
import { approveLink, inspectLinkCode, linkThisBrowser } from './link.service';
import { QrCode } from './qr.view';
import './link-safety.css';
import { describeError, type WebSession } from './session.service';

function linkError(err: unknown): string {
  if (err instanceof LinkDeclinedError) return 'Not linked: you did not confirm the account. Nothing was sent or kept.';
  if (err instanceof Error && err.message.startsWith('timed out')) return 'The link code expired before the other device answered. Start again for a new code.';
  return describeError(err);
}

type NewDeviceState =
  | { kind: 'starting' }
  | { kind: 'code'; code: string; info: LinkCodeInfo }
  | { kind: 'confirm'; code: string; info: LinkCodeInfo; offer: LinkOffer }
  | { kind: 'linking'; offer: LinkOffer }
  | { kind: 'failed'; message: string };

/** The new browser's side of linking (§1): a link code as text and QR, then the account it joins, to confirm. */
export function LinkThisBrowserView({ origin, onReady, onCancel }: { origin: string; onReady: (s: WebSession) => void; onCancel: () => void }) {
  const [state, setState] = useState<NewDeviceState>({ kind: 'starting' });
  const [attempt, setAttempt] = useState(0);
  const [copied, setCopied] = useState(false);
  const answer = useRef<((yes: boolean) => void) | undefined>(undefined);

  useEffect(() => {
    const abort = new AbortController();
    let shown: { code: string; info: LinkCodeInfo } | undefined;
    linkThisBrowser({
      origin,
      signal: abort.signal,
      onCode: (code, info) => {
        shown = { code, info };
        setState({ kind: 'code', code, info });
      },
      confirm: (offer) =>
        new Promise<boolean>((resolve) => {
          answer.current = (yes) => {
            answer.current = undefined;
            if (yes) setState({ kind: 'linking', offer });
            resolve(yes && !abort.signal.aborted);
          };
          if (shown) setState({ kind: 'confirm', ...shown, offer });
        }),
    }).then(
      (session) => {
        if (!abort.signal.aborted) onReady(session);
      },
      (err: unknown) => {
        if (!abort.signal.aborted) setState({ kind: 'failed', message: linkError(err) });
      },
    );
    return () => {
      abort.abort();
      answer.current?.(false);
    };
  }, [origin, attempt]);

  const copy = async (code: string) => {
    try {
      await navigator.clipboard.writeText(code);
      setCopied(true);
    } catch {
      setCopied(false);
    }
  };

  return (
    <main class="welcome link">
      <h1>Link this browser</h1>
      {state.kind === 'starting' && (
        <p role="status" class="hint">
          Making this device's keys…
        </p>
      )}
      {(state.kind === 'code' || state.kind === 'confirm') && (
        <section aria-labelledby="link-code-title">
          <h2 id="link-code-title">1. Show this code to your other device</h2>
          <p class="hint">
            On a device that is already in your account, open <strong>This device → Link a new device</strong> and paste the code, or run{' '}
            <code>umbra link &lt;code&gt;</code>.
          </p>
          <QrCode text={state.code} label="Link code as a QR code" testId="link-qr" />
          <label for="link-code-text" class="visually-hidden">
            Link code
          </label>
          <div class="code-row">
            <code id="link-code-text" class="code-text" data-testid="link-code">
              {state.code}
            </code>
            <button type="button" class="link" onClick={() => copy(state.code)}>
              {copied ? 'Copied' : 'Copy'}
            </button>
          </div>
          <p class="hint" data-testid="link-device">
            This browser will be device {state.info.deviceId}, key <strong data-testid="link-key">{state.info.keyFingerprint}</strong>. Your other device shows the same key.
          </p>
        </section>
      )}
      {state.kind === 'code' && (
        <p role="status" class="hint">
          Waiting for your other device…
        </p>
      )}
      {state.kind === 'confirm' && (
        <section class="confirm" role="alertdialog" aria-labelledby="link-confirm-title" data-testid="link-confirm">
          <h2 id="link-confirm-title">2. Is this your account?</h2>
          <p>This browser is about to join the account</p>
          <code class="code-text" data-testid="link-account">
            {state.offer.accountIdText}
          </code>
          <p class="hint">Join only if your other device shows this same account id on its "This device" page.</p>
          <div class="actions">
            <button type="button" data-testid="link-accept" onClick={() => answer.current?.(true)}>
              Yes, join this account
            </button>
            <button type="button" class="link" data-testid="link-reject" onClick={() => answer.current?.(false)}>
              No
            </button>
          </div>
        </section>
      )}
      {state.kind === 'linking' && (
        <p role="status" class="hint" data-testid="link-progress">
          Joining {state.offer.accountIdText}… waiting for your other device to add this one.
        </p>
      )}
      {state.kind === 'failed' && (
        <>
          <p class="error" role="alert" data-testid="error">
            {state.message}
          </p>
          <button type="button" data-testid="link-restart" onClick={() => setAttempt((n) => n + 1)}>
            Start again
          </button>
        </>
      )}
      <p>
        <button type="button" class="link" data-testid="link-cancel" onClick={onCancel}>
          ← Back
        </button>
      </p>
    </main>
  );
}

type ApproveState =
  | { kind: 'paste'; error?: string }
  | { kind: 'check'; code: string; info: LinkCodeInfo }
  | { kind: 'waiting'; info: LinkCodeInfo }
  | { kind: 'done'; deviceId: number }
  | { kind: 'failed'; message: string };

/** The existing device's side (§1): paste the new device's code, compare its key, approve or decline. */
export function LinkDeviceView({ session, onLinked }: { session: WebSession; onLinked: () => void }) {
  const [text, setText] = useState('');
  const [state, setState] = useState<ApproveState>({ kind: 'paste' });
  const abort = useRef<AbortController | undefined>(undefined);
  useEffect(() => () => abort.current?.abort(), []);

  const check = (e: Event) => {
    e.preventDefault();
    const res = inspectLinkCode(text);
    setState('error' in res ? { kind: 'paste', error: res.error } : { kind: 'check', ...res });
  };

  const approve = async (code: string, info: LinkCodeInfo) => {
    const controller = new AbortController();
    abort.current = controller;
    setState({ kind: 'waiting', info });
    try {
      const res = await approveLink(session, code, controller.signal);
      setText('');
      setState({ kind: 'done', deviceId: res.deviceId });
      onLinked();
    } catch (err) {
      if (!controller.signal.aborted) setState({ kind: 'failed', message: linkError(err) });
    }
  };

  const reset = () => {
    abort.current?.abort();
    setText('');
    setState({ kind: 'paste' });
  };

  return (
    <section class="link-device" aria-labelledby="link-device-title">
      <h3 id="link-device-title">Link a new device</h3>
      {(state.kind === 'paste' || state.kind === 'done' || state.kind === 'failed') && (
        <form onSubmit={check}>
          <p class="hint">On the new device choose "Link to an existing device" (or run umbra link), then paste the code it shows here.</p>
          <label for="link-code-input">Link code</label>
          <textarea
            id="link-code-input"
            data-testid="link-code-input"
            rows={3}
            value={text}
            spellcheck={false}
            autocomplete="off"
            placeholder="umbra-link:1:…"
            onInput={(e) => setText(e.currentTarget.value)}
          />
          <button type="submit" data-testid="link-check">
            Check code
          </button>
        </form>
      )}
      {state.kind === 'paste' && state.error && (
        <p class="error" role="alert" data-testid="error">
          {state.error}
        </p>
      )}
      {state.kind === 'check' && (
        <div class="confirm" role="alertdialog" aria-labelledby="link-check-title" data-testid="link-offer">
          <p id="link-check-title">
            Add <strong data-testid="link-new-device">device {state.info.deviceId}</strong> with key{' '}
            <strong data-testid="link-new-key">{state.info.keyFingerprint}</strong> to your account?
          </p>
          <p class="hint">
            Approve only if the new device shows this same key. It will get this account's new messages and will show your account id <code>{session.accountId}</code> to
            confirm.
          </p>
          <div class="actions">
            <button type="button" data-testid="link-approve" onClick={() => approve(state.code, state.info)}>
              Approve
            </button>
            <button type="button" class="link" data-testid="link-decline" onClick={reset}>
              Decline
            </button>
          </div>
        </div>
      )}
      {state.kind === 'waiting' && (
        <div role="status" data-testid="link-waiting">
          <p>Waiting for device {state.info.deviceId} to confirm your account…</p>
          <button type="button" class="link" onClick={reset}>
            Cancel
          </button>
        </div>
      )}
      {state.kind === 'done' && (
        <p role="status" class="ok" data-testid="link-done">
          Device {state.deviceId} was added to your account.
        </p>
      )}
      {state.kind === 'failed' && (
        <p class="error" role="alert" data-testid="error">
          {state.message}
        </p>
      )}
    </section>
  );
}

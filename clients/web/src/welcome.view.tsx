import { useEffect, useState } from 'preact/hooks';
import { LinkThisBrowserView } from './link.view';
import { solvePowInWorker } from './pow.service';
import { describeError, parseHandle, WebSession } from './session.service';

/** Create an account: an optional handle, then the proof of work in a worker with a progress indicator. */
export function WelcomeView({ origin, onReady }: { origin: string; onReady: (s: WebSession) => void }) {
  const [handleText, setHandleText] = useState('');
  const [busySince, setBusySince] = useState<number | undefined>();
  const [elapsed, setElapsed] = useState(0);
  const [error, setError] = useState<string | undefined>();
  const [linking, setLinking] = useState(false);

  useEffect(() => {
    if (busySince === undefined) return;
    const timer = setInterval(() => setElapsed(Math.floor((Date.now() - busySince) / 1000)), 250);
    return () => clearInterval(timer);
  }, [busySince]);

  if (linking) return <LinkThisBrowserView origin={origin} onReady={onReady} onCancel={() => setLinking(false)} />;

  const create = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    let handle: string | undefined;
    if (handleText.trim()) {
      const parsed = parseHandle(handleText);
      if ('error' in parsed) return setError(parsed.error);
      handle = parsed.handle;
    }
    setBusySince(Date.now());
    setElapsed(0);
    try {
      onReady(await WebSession.createAccount({ origin, ...(handle ? { handle } : {}), solvePow: solvePowInWorker }));
    } catch (err) {
      setError(describeError(err));
      setBusySince(undefined);
    }
  };

  const busy = busySince !== undefined;
  return (
    <main class="welcome">
      <h1>Umbra</h1>
      <p class="lede">End-to-end encrypted messaging. No phone number, no e-mail: your account is a key made in this browser.</p>
      <form onSubmit={create} aria-busy={busy}>
        <label for="handle">Handle (optional)</label>
        <input
          id="handle"
          data-testid="handle-input"
          value={handleText}
          onInput={(e) => setHandleText(e.currentTarget.value)}
          placeholder="e.g. alice"
          autocomplete="off"
          spellcheck={false}
          disabled={busy}
        />
        <p class="hint">Others can find you by it. Without one, share your account id.</p>
        <button type="submit" data-testid="create-account" disabled={busy}>
          Create account
        </button>
      </form>
      {busy && (
        <div class="pow" role="status" data-testid="pow-progress">
          <progress aria-label="Creating your account" />
          <span>Proving work to the server and creating your keys… {elapsed} s</span>
        </div>
      )}
      {error && (
        <p class="error" role="alert" data-testid="error">
          {error}
        </p>
      )}
      <p class="hint">Already use Umbra on another device?</p>
      <button type="button" class="link" data-testid="link-existing" disabled={busy} onClick={() => setLinking(true)}>
        Link to an existing device
      </button>
    </main>
  );
}

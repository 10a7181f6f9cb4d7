import { StoredStateError } from './idb.store';
import { WipeConfirm } from './wipe-confirm.view';

const HEADLINES: Record<StoredStateError['problem'], string> = {
  unopenable: 'This browser’s Umbra storage cannot be opened.',
  'key-missing': 'The key that protects this device’s stored messages is missing.',
  damaged: 'This device’s stored messages and keys are damaged.',
};

/** What the person reads: what happened, and that nothing was deleted. */
function explain(err: unknown): { headline: string; detail: string } {
  if (err instanceof StoredStateError) return { headline: HEADLINES[err.problem], detail: err.message.charAt(0).toUpperCase() + err.message.slice(1) };
  return { headline: 'This device’s stored state could not be loaded.', detail: err instanceof Error ? err.message : String(err) };
}

/**
 * The page cannot read this browser's device: says what happened, changes nothing, and offers a
 * retry and an explicit "wipe and start again" (confirmed first; only that deletes anything).
 */
export function StateErrorView({ error, wipeError, onWipe }: { error: unknown; wipeError?: string; onWipe: () => void }) {
  const { headline, detail } = explain(error);
  return (
    <main class="welcome">
      <h1>Umbra</h1>
      <section role="alert" data-testid="state-error" aria-labelledby="state-error-title">
        <h2 id="state-error-title">{headline}</h2>
        <p class="error">{detail}.</p>
        <p>
          Nothing has been deleted: what is stored stays as it is until you choose. Reloading may help if another tab or a browser update was in the way.
        </p>
      </section>
      {wipeError && (
        <p class="error" role="alert" data-testid="error">
          {wipeError}
        </p>
      )}
      <p>
        <button type="button" data-testid="retry" onClick={() => window.location.reload()}>
          Reload and try again
        </button>
      </p>
      <WipeConfirm
        label="Wipe this device and start again"
        warning="Wiping deletes this device’s keys and every message stored in this browser; they cannot be recovered. Your other devices keep theirs. Afterwards you can create an account or link this browser again."
        onWipe={onWipe}
      />
    </main>
  );
}

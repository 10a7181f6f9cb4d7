import { useState } from 'preact/hooks';

/** "Wipe this device", asked twice: the first button shows what a wipe deletes and the real one. */
export function WipeConfirm({ label, warning, onWipe }: { label: string; warning: string; onWipe: () => void }) {
  const [confirming, setConfirming] = useState(false);
  return (
    <div class="danger">
      {confirming ? (
        <>
          <p>{warning}</p>
          <button type="button" class="destructive" data-testid="wipe-confirm" onClick={onWipe}>
            Wipe this device
          </button>{' '}
          <button type="button" class="link" onClick={() => setConfirming(false)}>
            Cancel
          </button>
        </>
      ) : (
        <button type="button" class="destructive" data-testid="wipe" onClick={() => setConfirming(true)}>
          {label}
        </button>
      )}
    </div>
  );
}

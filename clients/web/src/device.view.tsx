import { useState } from 'preact/hooks';
import { ReceiptsSetting } from './receipts-setting.view';
import type { WebSession } from './session.service';

/** "This device": the account id to share, the device id, the handle; log out and wipe. */
export function DeviceView({ session, onBack, onWipe }: { session: WebSession; onBack: () => void; onWipe: () => void }) {
  const [confirming, setConfirming] = useState(false);
  return (
    <div class="device">
      <header class="bar">
        <button type="button" class="back" onClick={onBack} aria-label="Back to conversations">
          ←
        </button>
        <h2>This device</h2>
      </header>
      <dl>
        <dt>Account id</dt>
        <dd>
          <code data-testid="account-id">{session.accountId}</code>
        </dd>
        <dt>Device id</dt>
        <dd data-testid="device-id">{session.deviceId}</dd>
        <dt>Handle</dt>
        <dd data-testid="handle">{session.handle ? `@${session.handle}` : 'none'}</dd>
      </dl>
      {session.handleError && (
        <p class="error" role="alert">
          {session.handleError}
        </p>
      )}
      <ReceiptsSetting session={session} />
      <p class="hint">This device's keys and messages are stored in this browser, encrypted under a key the page cannot export.</p>
      <div class="danger">
        {confirming ? (
          <>
            <p>This deletes this device's keys and every message stored in this browser. Messages still queued for it on the server are not recoverable.</p>
            <button type="button" class="destructive" data-testid="wipe-confirm" onClick={onWipe}>
              Wipe this device
            </button>{' '}
            <button type="button" class="link" onClick={() => setConfirming(false)}>
              Cancel
            </button>
          </>
        ) : (
          <button type="button" class="destructive" data-testid="wipe" onClick={() => setConfirming(true)}>
            Log out and wipe this device
          </button>
        )}
      </div>
    </div>
  );
}

import { useEffect, useState } from 'preact/hooks';
import { LinkDeviceView } from './link.view';
import { Modal } from './modal.view';
import { holdsAccountKey, listDevices, removeOtherDevice, type DeviceEntry } from './link.service';
import { ReceiptsSetting } from './receipts-setting.view';
import { WipeConfirm } from './wipe-confirm.view';
import { describeError, type WebSession } from './session.service';

/** This account's devices; a device holding the account key can remove the others. */
function DeviceList({ session, revision }: { session: WebSession; revision: number }) {
  const [devices, setDevices] = useState<DeviceEntry[] | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [confirming, setConfirming] = useState<number | undefined>();
  const [reload, setReload] = useState(0);
  const canRemove = holdsAccountKey(session);

  useEffect(() => {
    let live = true;
    listDevices(session).then(
      (d) => live && setDevices(d),
      (err: unknown) => live && setError(describeError(err)),
    );
    return () => {
      live = false;
    };
  }, [session, revision, reload]);

  const remove = async (deviceId: number) => {
    setError(undefined);
    setConfirming(undefined);
    try {
      await removeOtherDevice(session, deviceId);
    } catch (err) {
      setError(describeError(err));
    }
    setReload((n) => n + 1);
  };

  return (
    <section aria-labelledby="devices-title">
      <h3 id="devices-title">Devices of this account</h3>
      {!devices && !error && <p role="status">Loading…</p>}
      {devices && (
        <ul class="devices" data-testid="device-list">
          {devices.map((d) => (
            <li key={d.deviceId} data-testid="device" data-device-id={d.deviceId}>
              <span>
                Device {d.deviceId}
                {d.current && <strong> (this device)</strong>}
                {d.accountKey && <span class="hint"> · holds the account key</span>}
                <br />
                <small class="hint">added {new Date(d.createdAt).toLocaleString()}</small>
              </span>
              {canRemove && !d.current && confirming !== d.deviceId && (
                <button type="button" class="link" data-testid="device-remove" aria-label={`Remove device ${d.deviceId}`} onClick={() => setConfirming(d.deviceId)}>
                  Remove
                </button>
              )}
              {confirming === d.deviceId && (
                <span class="actions">
                  <button type="button" class="destructive" data-testid="device-remove-confirm" onClick={() => remove(d.deviceId)}>
                    Remove device {d.deviceId}
                  </button>
                  <button type="button" class="link" onClick={() => setConfirming(undefined)}>
                    Cancel
                  </button>
                </span>
              )}
            </li>
          ))}
        </ul>
      )}
      {confirming !== undefined && <p class="hint">A removed device is signed out at once and receives nothing more; messages already on it stay there.</p>}
      {error && (
        <p class="error" role="alert" data-testid="error">
          {error}
        </p>
      )}
    </section>
  );
}

/** "This device": the account id to share, the device id, the handle, the account's devices, linking; log out and wipe. */
export function DeviceView({ session, onBack, onWipe }: { session: WebSession; onBack: () => void; onWipe: () => void }) {
  const [revision, setRevision] = useState(0);
  return (
    <div class="device">
      <header class="bar">
        <button type="button" class="back" onClick={onBack} aria-label="Back to conversations">
          ←
        </button>
        <h2>This device</h2>
      </header>
      <div class="device-body">
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
        <DeviceList session={session} revision={revision} />
        {holdsAccountKey(session) ? (
          <LinkDeviceView session={session} onLinked={() => setRevision((n) => n + 1)} />
        ) : (
          <p class="hint" data-testid="link-unavailable">
            This device was linked to the account: only the device that created it holds the account key and can link or remove devices.
          </p>
        )}
        <WipeConfirm
          label="Log out and wipe this device"
          warning="This deletes this device's keys and every message stored in this browser. Messages still queued for it on the server are not recoverable."
          onWipe={onWipe}
        />
      </div>
    </div>
  );
}

/** Blocks the page once another device of the account removed this one: it receives nothing more. */
export function RevokedNotice({ session, onWipe }: { session: WebSession; onWipe: () => void }) {
  const [revoked, setRevoked] = useState(false);
  useEffect(() => {
    return session.umbra.on('connection', (e) => {
      if (e.state === 'revoked' && e.reason === 'device_removed') setRevoked(true);
    });
  }, [session]);
  if (!revoked) return null;
  return (
    <Modal labelledBy="revoked-title" testId="revoked">
      <h2 id="revoked-title">This device was removed</h2>
      <p>Another device of your account removed this one: it is signed out and receives no more messages. What is stored here stays readable until you wipe it.</p>
      <div class="actions">
        <button type="button" class="destructive" data-testid="revoked-wipe" onClick={onWipe}>
          Wipe this device
        </button>
      </div>
    </Modal>
  );
}

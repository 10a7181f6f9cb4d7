import { useState } from 'preact/hooks';
import { describeError, type WebSession } from './session.service';

/** The read-receipts setting: off, this device tells nobody which messages it has shown. */
export function ReceiptsSetting({ session }: { session: WebSession }) {
  const [on, setOn] = useState(session.umbra.account.readReceipts);
  const [error, setError] = useState<string | undefined>();
  const change = async (value: boolean) => {
    setError(undefined);
    try {
      await session.umbra.account.setReadReceipts(value);
      setOn(value);
    } catch (err) {
      setError(describeError(err));
    }
  };
  return (
    <div class="setting">
      <label>
        <input type="checkbox" data-testid="read-receipts" checked={on} onChange={(e) => void change(e.currentTarget.checked)} /> Send read receipts
      </label>
      <p class="hint">Off: the people you talk to do not see when you have read their messages.</p>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

import { useRef } from 'preact/hooks';
import type { WebSession } from './session.service';

/** A reconnect shorter than this is normal (a network change, a gateway restarting) and not worth a notice. */
const NOTICE_AFTER_MS = 5000;

/**
 * Says so when the server has been out of reach for a while (down, answering 5xx, or the network
 * gone), and that nothing is lost. Its parent re-renders every second, which is what moves it.
 */
export function OfflineNotice({ session }: { session: WebSession }) {
  const since = useRef<number | undefined>(undefined);
  if (session.connected) since.current = undefined;
  else since.current ??= Date.now();
  if (since.current === undefined || Date.now() - since.current < NOTICE_AFTER_MS) return null;
  return (
    <p class="offline-note" role="status" data-testid="offline-note">
      The server cannot be reached right now. Everything here is kept, and what you send waits as “sending…” until the connection is back.
    </p>
  );
}

import type { FetchFn } from '../http.client';
import type { KtTrustConfig } from '../kt/kt.verifier';
import type { KeyValueStore } from '../store';

export interface UmbraClientOptions {
  /** The public origin, e.g. http://127.0.0.1:8080 */
  serverUrl: string;
  store: KeyValueStore;
  fetch?: FetchFn;
  now?: () => number;
  /** Per-attempt timeout of a socket send. */
  sendTimeoutMs?: number;
  /** Remembered (sender device, clientMessageId) pairs for de-duplication. */
  dedupWindow?: number;
  /** How often a connected client checks whether its signed prekey is due for rotation (PROTOCOL.md §2). */
  prekeyCheckIntervalMs?: number;
  /**
   * Key-transparency pins (PROTOCOL.md §12): every device list and handle binding is checked against
   * this log and witness quorum. Without it the server's GET /v1/kt/config is pinned on first use
   * and a `kt-warning` event says so. There is no way to turn the checks off.
   */
  kt?: KtTrustConfig;
  /** How long a lookup waits for a just-published statement to be logged before failing not-in-log (default 15 s). */
  ktInclusionWaitMs?: number;
  /** How often a connected AIK-holding device monitors its own labels (§12: at least daily; default 24 h). */
  ktMonitorIntervalMs?: number;
  /**
   * The clock STH ages are measured with (§12 check 2). Tree heads carry the log's wall-clock time,
   * so this defaults to Date.now, not to `now` (which tests move ahead to simulate days passing on
   * the device alone).
   */
  ktNow?: () => number;
}

import type { UmbraClient } from '../client';
import type { Messenger } from '../messenger';
import type { Receipts } from '../receipts';
import type { KeyValueStore } from '../store';
import type { LocalState } from '../state/local.state';

/** What the front door's parts share: the client, the messenger over it, the typed local state. */
export interface UmbraCore {
  readonly client: UmbraClient;
  readonly messenger: Messenger;
  readonly receipts: Receipts;
  readonly state: LocalState;
  /** The store under `state`, for the SDK's own modules that keep entries there (resumable uploads). */
  readonly store: KeyValueStore;
  readonly now: () => number;
  /** Throws UmbraError CLOSED once the instance was closed or wiped. */
  assertOpen(): void;
}

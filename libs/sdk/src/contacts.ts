import { verifySafetyQr } from '@umbra/crypto';
import { Mutex } from './mutex';
import { LocalState, stateWrite } from './state/local.state';
import { STATE_FAMILIES, STATE_KEYS } from './state/state.keys';
import type { KeyValueStore } from './store';

/**
 * A handle that resolved to one account now resolves to another. An account id is the hash of its
 * identity key (PROTOCOL.md §1), so this is the only way a contact's identity key "changes": the
 * person behind the handle now has another key, or someone else holds the handle (§11).
 */
export interface IdentityChange {
  /** Canonical handle, without "@". */
  handle: string;
  /** The account the handle named before ("um1…"). */
  previous: string;
  /** The account it names now. */
  current: string;
  at: number;
}

/** The user compared the safety number with this account out of band and marked it verified. */
export interface Verification {
  accountId: string;
  /** The 60 digits compared. */
  safetyNumber: string;
  at: number;
}

/**
 * What this device knows of its contacts' identities (§11): the account each handle resolved to
 * (pinned on first use), the accounts the user verified, and the identity changes the user has not
 * acknowledged. When a handle starts resolving to another account, the change is kept until
 * `acknowledge`, the listeners hear of it, and "verified" is cleared for both accounts.
 */
export class Contacts {
  private readonly listeners = new Set<(change: IdentityChange) => void>();
  private readonly lock = new Mutex();
  private readonly state: LocalState;

  constructor(
    store: KeyValueStore,
    private readonly now: () => number = () => Date.now(),
  ) {
    this.state = new LocalState(store);
  }

  /** Called for every identity change this device notices; returns the unsubscribe function. */
  onIdentityChange(listener: (change: IdentityChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Records that the (canonical) handle resolved to `accountId`: the change, when it named another account before. */
  noteHandle(handle: string, accountId: string): Promise<IdentityChange | undefined> {
    return this.lock.run(async () => {
      const previous = await this.state.get(STATE_KEYS.contactHandle(handle));
      if (previous === accountId) return undefined;
      if (previous === undefined) {
        await this.state.set(STATE_KEYS.contactHandle(handle), accountId);
        return undefined;
      }
      const change: IdentityChange = { handle, previous, current: accountId, at: this.now() };
      await this.state.batch([
        stateWrite(STATE_KEYS.contactHandle(handle), accountId),
        stateWrite(STATE_KEYS.contactChange(handle), change),
        stateWrite(STATE_KEYS.contactVerified(previous), undefined),
        stateWrite(STATE_KEYS.contactVerified(accountId), undefined),
      ]);
      for (const l of this.listeners) l(change);
      return change;
    });
  }

  /** The handles last seen resolving to this account. */
  async handlesOf(accountId: string): Promise<string[]> {
    const pinned = await this.state.entries(STATE_FAMILIES.contactHandle);
    return pinned.filter((e) => e.value === accountId).map((e) => e.suffix).sort();
  }

  /** Identity changes not acknowledged yet; with an account id, only those it is part of (as previous or current). */
  async pendingChanges(accountId?: string): Promise<IdentityChange[]> {
    const changes = (await this.state.entries(STATE_FAMILIES.contactChange)).map((e) => e.value);
    return changes.filter((c) => !accountId || c.previous === accountId || c.current === accountId).sort((a, b) => a.at - b.at);
  }

  /** The user has seen the change of this handle (the new account stays unverified until marked). */
  acknowledge(handle: string): Promise<void> {
    return this.state.delete(STATE_KEYS.contactChange(handle));
  }

  markVerified(accountId: string, safetyNumber: string): Promise<void> {
    const v: Verification = { accountId, safetyNumber, at: this.now() };
    return this.state.set(STATE_KEYS.contactVerified(accountId), v);
  }

  clearVerified(accountId: string): Promise<void> {
    return this.state.delete(STATE_KEYS.contactVerified(accountId));
  }

  verification(accountId: string): Promise<Verification | undefined> {
    return this.state.get(STATE_KEYS.contactVerified(accountId));
  }
}

/**
 * Whether the peer's safety-number code (its QR payload, "umbra-sn:1:…", scanned or pasted) is ours
 * with local and remote swapped (§11): then both devices see the same two account keys.
 */
export function safetyCodesMatch(ours: string, theirs: string): boolean {
  return verifySafetyQr(ours, theirs.trim());
}

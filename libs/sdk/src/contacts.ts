import { verifySafetyQr } from '@umbra/crypto';
import { Mutex } from './mutex';
import type { KeyValueStore, StoreWrite } from './store';

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

const K_HANDLE = (handle: string) => `contacts/handle/${handle}`;
const K_CHANGE = (handle: string) => `contacts/change/${handle}`;
const K_VERIFIED = (accountId: string) => `contacts/verified/${accountId}`;

/**
 * What this device knows of its contacts' identities (§11): the account each handle resolved to
 * (pinned on first use), the accounts the user verified, and the identity changes the user has not
 * acknowledged. When a handle starts resolving to another account, the change is kept until
 * `acknowledge`, the listeners hear of it, and "verified" is cleared for both accounts.
 */
export class Contacts {
  private readonly listeners = new Set<(change: IdentityChange) => void>();
  private readonly lock = new Mutex();

  constructor(
    private readonly store: KeyValueStore,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /** Called for every identity change this device notices; returns the unsubscribe function. */
  onIdentityChange(listener: (change: IdentityChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Records that the (canonical) handle resolved to `accountId`: the change, when it named another account before. */
  noteHandle(handle: string, accountId: string): Promise<IdentityChange | undefined> {
    return this.lock.run(async () => {
      const previous = await this.store.get(K_HANDLE(handle));
      if (previous === accountId) return undefined;
      if (previous === undefined) {
        await this.store.set(K_HANDLE(handle), accountId);
        return undefined;
      }
      const change: IdentityChange = { handle, previous, current: accountId, at: this.now() };
      const writes: StoreWrite[] = [
        [K_HANDLE(handle), accountId],
        [K_CHANGE(handle), JSON.stringify(change)],
        [K_VERIFIED(previous), undefined],
        [K_VERIFIED(accountId), undefined],
      ];
      await this.store.batch(writes);
      for (const l of this.listeners) l(change);
      return change;
    });
  }

  /** The handles last seen resolving to this account. */
  async handlesOf(accountId: string): Promise<string[]> {
    const out: string[] = [];
    for (const key of await this.store.keys('contacts/handle/')) {
      if ((await this.store.get(key)) === accountId) out.push(key.slice('contacts/handle/'.length));
    }
    return out.sort();
  }

  /** Identity changes not acknowledged yet; with an account id, only those it is part of (as previous or current). */
  async pendingChanges(accountId?: string): Promise<IdentityChange[]> {
    const out: IdentityChange[] = [];
    for (const key of await this.store.keys('contacts/change/')) {
      const raw = await this.store.get(key);
      if (!raw) continue;
      const change = JSON.parse(raw) as IdentityChange;
      if (!accountId || change.previous === accountId || change.current === accountId) out.push(change);
    }
    return out.sort((a, b) => a.at - b.at);
  }

  /** The user has seen the change of this handle (the new account stays unverified until marked). */
  acknowledge(handle: string): Promise<void> {
    return this.store.delete(K_CHANGE(handle));
  }

  markVerified(accountId: string, safetyNumber: string): Promise<void> {
    const v: Verification = { accountId, safetyNumber, at: this.now() };
    return this.store.set(K_VERIFIED(accountId), JSON.stringify(v));
  }

  clearVerified(accountId: string): Promise<void> {
    return this.store.delete(K_VERIFIED(accountId));
  }

  async verification(accountId: string): Promise<Verification | undefined> {
    const raw = await this.store.get(K_VERIFIED(accountId));
    return raw ? (JSON.parse(raw) as Verification) : undefined;
  }
}

/**
 * Whether the peer's safety-number code (its QR payload, "umbra-sn:1:…", scanned or pasted) is ours
 * with local and remote swapped (§11): then both devices see the same two account keys.
 */
export function safetyCodesMatch(ours: string, theirs: string): boolean {
  return verifySafetyQr(ours, theirs.trim());
}

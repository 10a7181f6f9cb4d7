import { canonicalHandle, CryptoError } from '@umbra/crypto';
import { UmbraApiError } from '../errors';
import { STATE_KEYS } from '../state/state.keys';
import type { UmbraCore } from './umbra.core';
import { UmbraError } from './umbra.errors';

/** `umbra.account`: who this device is, and the account's optional handle. */
export class AccountPart {
  constructor(private readonly core: UmbraCore) {}

  /** The account id ("um1…"): what others write to when there is no handle. */
  get id(): string {
    return this.core.client.identity.accountIdText;
  }

  get deviceId(): number {
    return this.core.client.identity.device.deviceId;
  }

  /** This device holds the account key (it can set the handle, link and remove devices). */
  get accountKeyHolder(): boolean {
    return this.core.client.identity.aikSk !== undefined;
  }

  /** Whether this device sends read receipts (on by default; off, none are sent). */
  get readReceipts(): boolean {
    return this.core.receipts.readReceipts;
  }

  async setReadReceipts(on: boolean): Promise<void> {
    await this.core.receipts.setReadReceipts(on);
  }

  /** The handle this device set, or undefined. */
  async handle(): Promise<string | undefined> {
    return this.core.state.get(STATE_KEYS.ownHandle);
  }

  /** Claims a handle (3–32 letters a–z, digits or _; "@" optional) or moves to another; the old one is released. */
  async setHandle(handle: string): Promise<string> {
    this.core.assertOpen();
    if (!this.accountKeyHolder) throw new UmbraError('NOT_ACCOUNT_KEY_HOLDER', 'only the device that created the account can set its handle');
    return this.core.client.claimHandle(parseHandle(handle));
  }

  /** Releases the handle; the account stays reachable by its id. */
  async clearHandle(): Promise<void> {
    this.core.assertOpen();
    try {
      await this.core.client.releaseHandle();
    } catch (err) {
      if (!(err instanceof UmbraApiError && err.code === 'HANDLE_NOT_FOUND')) throw err;
    }
  }

  /** An account by handle ("@name" or "name") or id, checked against the key-transparency log; its id. */
  async resolve(peer: string): Promise<string> {
    return (await this.lookup(peer)).id;
  }

  /** Like `resolve`, with the account's handle when it has one (to show "@name" instead of the id). */
  async lookup(peer: string): Promise<{ id: string; handle?: string }> {
    this.core.assertOpen();
    const text = peer.trim();
    if (text.startsWith('um1')) {
      const account = await this.core.client.getAccount(text);
      return { id: account.accountId, ...(account.handle ? { handle: account.handle } : {}) };
    }
    const handle = parseHandle(text);
    return { id: (await this.core.client.getAccountByHandle(handle)).accountId, handle };
  }
}

/** A handle as the server stores it ("@" optional, case folded); UmbraError INVALID_ARGUMENT when it is none. */
export function parseHandle(text: string): string {
  try {
    return canonicalHandle(text.trim().replace(/^@/, ''));
  } catch (err) {
    if (err instanceof CryptoError) throw new UmbraError('INVALID_ARGUMENT', `not a valid handle: ${text} (3–32 letters a–z, digits or _)`);
    throw err;
  }
}

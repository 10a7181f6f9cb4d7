import { safetyCodesMatch, type IdentityChange, type Verification } from '../contacts';
import type { DevicesPart } from './devices.part';
import type { UmbraCore } from './umbra.core';
import { UmbraError } from './umbra.errors';

/**
 * `umbra.contacts`: what this device knows of other accounts' identities (PROTOCOL.md §11) — the
 * accounts the user verified by comparing safety numbers, and the identity changes (a handle that
 * now names another account) not acknowledged yet. An `identity-change` event says when one appears.
 */
export class ContactsPart {
  constructor(
    private readonly core: UmbraCore,
    private readonly devices: DevicesPart,
  ) {}

  /** The user's verification of this account (the safety number compared, and when), or undefined. */
  verification(peer: string): Promise<Verification | undefined> {
    return this.core.client.contacts.verification(peer);
  }

  /**
   * Marks the account verified under the current safety number (the user compared it out of band).
   * `compared`, the digits the user saw, must still be the current number (INVALID_ARGUMENT if not).
   */
  async markVerified(peer: string, compared?: string): Promise<Verification> {
    const { digits } = await this.devices.safetyNumber(peer);
    if (compared !== undefined && compared !== digits) throw new UmbraError('INVALID_ARGUMENT', 'the safety number changed since it was shown: compare the new one');
    await this.core.client.contacts.markVerified(peer, digits);
    return (await this.core.client.contacts.verification(peer))!;
  }

  /**
   * Compares the peer's safety-number code (its QR payload "umbra-sn:1:…", scanned or pasted) with
   * ours: true on a match, which marks the account verified; false changes nothing.
   */
  async compare(peer: string, theirs: string): Promise<boolean> {
    const { digits, qr } = await this.devices.safetyNumber(peer);
    if (!safetyCodesMatch(qr, theirs)) return false;
    await this.core.client.contacts.markVerified(peer, digits);
    return true;
  }

  clearVerified(peer: string): Promise<void> {
    return this.core.client.contacts.clearVerified(peer);
  }

  /**
   * Identity changes not acknowledged yet (with an account, those it is part of). With `recheck`, the
   * handles this account was reached by are looked up again first, so a change made since shows now.
   */
  async changes(peer?: string, opts: { recheck?: boolean } = {}): Promise<IdentityChange[]> {
    if (peer && opts.recheck) {
      this.core.assertOpen();
      for (const handle of await this.core.client.contacts.handlesOf(peer)) {
        // A handle released and not claimed again is no change; a failed lookup is retried next time.
        await this.core.client.getAccountByHandle(handle).catch(() => undefined);
      }
    }
    return this.core.client.contacts.pendingChanges(peer);
  }

  /** The user has seen this change (the new account stays unverified until marked). */
  acknowledge(change: IdentityChange | string): Promise<void> {
    return this.core.client.contacts.acknowledge(typeof change === 'string' ? change : change.handle);
  }
}

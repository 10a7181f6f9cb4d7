import { safetyCodesMatch, type IdentityChange, type Verification } from '@umbra/sdk';
import type { WebSession } from './session.service';

/** What the safety-number panel shows for one contact (PROTOCOL.md §11). */
export interface SafetyInfo {
  accountId: string;
  /** 60 digits. */
  digits: string;
  /** The same digits in 12 groups of 5. */
  groups: string[];
  /** "umbra-sn:1:…", shown as a QR code for the contact to scan. */
  qr: string;
  verified: Verification | undefined;
}

/** The safety number with a contact, computed from its verified device list's account key. */
export async function safetyInfo(session: WebSession, accountId: string): Promise<SafetyInfo> {
  const list = await session.messenger.deviceList(accountId);
  const sn = session.messenger.safetyNumber(list.aik);
  const verified = await session.client.contacts.verification(accountId);
  return { accountId, digits: sn.digits, groups: sn.groups, qr: sn.qr, verified: verified?.safetyNumber === sn.digits ? verified : undefined };
}

export function markVerified(session: WebSession, info: SafetyInfo): Promise<void> {
  return session.client.contacts.markVerified(info.accountId, info.digits);
}

/** Compares the contact's code (its QR payload, scanned or pasted); a match marks the contact verified. */
export async function compareCode(session: WebSession, info: SafetyInfo, theirs: string): Promise<boolean> {
  if (!safetyCodesMatch(info.qr, theirs)) return false;
  await markVerified(session, info);
  return true;
}

export function clearVerified(session: WebSession, accountId: string): Promise<void> {
  return session.client.contacts.clearVerified(accountId);
}

/**
 * Looks the handles this contact was reached by up again (a handle that now names another account
 * is an identity change the SDK records), then returns the changes not acknowledged yet.
 */
export async function identityChanges(session: WebSession, accountId: string): Promise<IdentityChange[]> {
  for (const handle of await session.client.contacts.handlesOf(accountId)) {
    // A handle released and not claimed again is no change; a failed lookup is retried next time.
    await session.client.getAccountByHandle(handle).catch(() => undefined);
  }
  return session.client.contacts.pendingChanges(accountId);
}

export function acknowledgeChange(session: WebSession, change: IdentityChange): Promise<void> {
  return session.client.contacts.acknowledge(change.handle);
}

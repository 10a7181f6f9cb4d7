import type { IdentityChange, Verification } from '@umbra/sdk';
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
  const sn = await session.umbra.devices.safetyNumber(accountId);
  const verified = await session.umbra.contacts.verification(accountId);
  return { accountId, digits: sn.digits, groups: sn.groups, qr: sn.qr, verified: verified?.safetyNumber === sn.digits ? verified : undefined };
}

export async function markVerified(session: WebSession, info: SafetyInfo): Promise<void> {
  await session.umbra.contacts.markVerified(info.accountId, info.digits);
}

/** Compares the contact's code (its QR payload, scanned or pasted); a match marks the contact verified. */
export function compareCode(session: WebSession, info: SafetyInfo, theirs: string): Promise<boolean> {
  return session.umbra.contacts.compare(info.accountId, theirs);
}

export function clearVerified(session: WebSession, accountId: string): Promise<void> {
  return session.umbra.contacts.clearVerified(accountId);
}

/**
 * Looks the handles this contact was reached by up again (a handle that now names another account
 * is an identity change the SDK records), then returns the changes not acknowledged yet.
 */
export function identityChanges(session: WebSession, accountId: string): Promise<IdentityChange[]> {
  return session.umbra.contacts.changes(accountId, { recheck: true });
}

export function acknowledgeChange(session: WebSession, change: IdentityChange): Promise<void> {
  return session.umbra.contacts.acknowledge(change);
}

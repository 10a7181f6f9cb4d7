import type { IdentityChange } from '@umbra/sdk';
import { formatTime, type Output } from './output';
import type { Peer, Session } from './session';

/** The JSON form of a change, for --json results. */
export function identityChangeData(change: IdentityChange): { handle: string; previous: string; current: string; at: number } {
  return { handle: change.handle, previous: change.previous, current: change.current, at: change.at };
}

/**
 * Says on stderr that the peer's handle now names another account than it did (§11: someone else
 * holds the handle, or its owner has a new identity). Repeated by every command until the user has
 * seen the new safety number (`umbra safety-number @handle`).
 */
export async function warnIdentityChange(s: Session, out: Output, peer: Peer): Promise<IdentityChange | undefined> {
  const change = await s.identityChange(peer);
  if (change) {
    out.note(
      `WARNING: @${change.handle} now names a different account than before (${change.previous} until ${formatTime(change.at)}, now ${change.current}): ` +
        `someone else may hold the handle, or its owner has a new identity. Compare safety numbers with them before trusting it: umbra safety-number @${change.handle}`,
    );
  }
  return change;
}

import type { Content } from '@umbra/crypto';

export interface ReceivedMessage {
  /** Sending account ("um1…") and device. */
  from: string;
  fromDevice: number;
  content: Content;
  /** True for copies of our own messages sent from another of our devices ("sync"). */
  sync: boolean;
  /** The sending device is in its account's current, verified device list. */
  verified: boolean;
  serverTimestamp: number;
  /** For sync copies: the account our other device sent it to. */
  dest?: string;
  /** The envelope it arrived in (server id and clientMessageId). */
  envelopeId?: string;
  clientMessageId?: string;
  /** The conversation: the peer account, or the group id. */
  conv?: string;
  /** When this device deletes it (vanishing messages), or null. */
  deleteAt?: number | null;
}

/** Group state under the single-writer admin model of §6. */
export interface GroupState {
  gid: string;
  epoch: number;
  admin: string;
  members: string[];
  /** The name the admin gave it (shown by clients; members learn it with the membership). */
  name?: string;
}

/** A peer device's sessions: the active one and the archived ones that may still decrypt (Sesame). */
export interface SessionRecord {
  active: string;
  archived: string[];
}

/** Our sender-key chain for a group and the devices it was handed to. */
export interface OwnChainRecord {
  chain: string;
  /** "account:device" of every device that has this chain. */
  distributed: string[];
}

/** A peer could not decrypt one of our messages and started a new session. */
export interface RetryRequest {
  from: string;
  device: number;
  failedClientMessageId?: string;
}

/**
 * Content kinds that are shown to the user, kept in the history and carry the conversation's timer.
 * Call signalling (k:"call") is not one: it never changes a timer and is never stored.
 */
export const USER_KINDS: ReadonlySet<string> = new Set(['text', 'att']);
/** Kinds that change an earlier message (its author's, for edit and del) instead of being one. */
export const ANNOTATION_KINDS: ReadonlySet<string> = new Set(['react', 'edit', 'del']);

/** The conversation a received Content belongs to: its group, the account a sync copy went to, or the sender. */
export function conversationOf(msg: Pick<ReceivedMessage, 'content' | 'sync' | 'dest' | 'from'>): string | undefined {
  const gid = msg.content.gid;
  if (typeof gid === 'string') return gid;
  return msg.sync ? msg.dest : msg.from;
}

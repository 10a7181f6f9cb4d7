import { pointerOf, type AttachmentPointer, type GroupState, type HistoryEntry, type Timer } from '@umbra/sdk';

export type DeliveryState = 'sending' | 'stored' | 'delivered' | 'read' | 'failed';

export interface Reaction {
  emoji: string;
  count: number;
  mine: boolean;
}

export interface ChatMessage {
  /** Content id. */
  id: string;
  conv: string;
  /** Author account. */
  from: string;
  outgoing: boolean;
  text: string;
  at: number;
  state?: DeliveryState;
  edited: boolean;
  reactions: Reaction[];
  reply?: { id: string; from: string; text?: string };
  /** The message's vanishing timer, when it has one. */
  exp?: Timer;
  /** When this device deletes it (ms), or null. */
  deleteAt: number | null;
  readAt?: number;
  /** The attachment a file or voice message carries. */
  file?: AttachmentPointer;
}

export interface Conversation {
  /** The peer's account id, or the group id. */
  id: string;
  kind: 'direct' | 'group';
  label: string;
  unread: number;
  messages: ChatMessage[];
  timer: Timer | null;
  group?: GroupState;
  /** Display names of the accounts in it (the peer, or the members), "You" for this account. */
  names: Record<string, string>;
  /** Until when the peer is shown as typing (ms). */
  typingUntil?: number;
}

export function shortId(accountId: string): string {
  return accountId.length > 16 ? `${accountId.slice(0, 10)}…${accountId.slice(-4)}` : accountId;
}

/** The page's view of one history entry: the latest edit, reactions counted, delivery from receipts. */
export function toChatMessage(e: HistoryEntry, me: string): ChatMessage | undefined {
  const c = e.content;
  const file = pointerOf(c);
  const body = c.k === 'text' && typeof c.text === 'string' ? c.text : file ? (file.ct.startsWith('audio/') && file.dur !== undefined ? '🎤 Voice message' : `📎 ${file.name ?? 'attachment'}`) : c.k === 'att' ? '📎 an attachment that cannot be read' : undefined;
  if (body === undefined) return undefined;
  const counts = new Map<string, Reaction>();
  for (const [account, r] of Object.entries(e.reactions ?? {})) {
    if (!r.emoji) continue;
    const x = counts.get(r.emoji) ?? { emoji: r.emoji, count: 0, mine: false };
    x.count++;
    x.mine ||= account === me;
    counts.set(r.emoji, x);
  }
  const reply = c.reply as { id?: unknown; from?: unknown; text?: unknown } | undefined;
  return {
    id: e.id,
    conv: e.conv,
    from: e.from,
    outgoing: e.outgoing,
    text: e.edited?.text ?? body,
    at: e.serverTimestamp || c.ts,
    ...(e.outgoing ? { state: deliveryOf(e) } : {}),
    edited: e.edited !== undefined,
    reactions: [...counts.values()],
    ...(reply && typeof reply.id === 'string' && typeof reply.from === 'string'
      ? { reply: { id: reply.id, from: reply.from, ...(typeof reply.text === 'string' ? { text: reply.text } : {}) } }
      : {}),
    ...(c.exp ? { exp: c.exp } : {}),
    deleteAt: e.deleteAt,
    ...(file ? { file } : {}),
    ...(e.readAt !== undefined ? { readAt: e.readAt } : {}),
  };
}

function deliveryOf(e: HistoryEntry): DeliveryState {
  const receipts = Object.values(e.receipts ?? {});
  if (receipts.some((r) => r.read !== undefined)) return 'read';
  if (receipts.some((r) => r.delivered !== undefined)) return 'delivered';
  return 'stored';
}

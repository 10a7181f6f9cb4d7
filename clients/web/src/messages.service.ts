import type { Messenger, Receipts } from '@umbra/sdk';
import type { ConversationStore } from './conversations.store';

/** A "started" is repeated this often while the person keeps typing; "stopped" follows this long after the last key. */
const TYPING_REPEAT_MS = 3000;
const TYPING_IDLE_MS = 4000;

/**
 * What a person does to messages: send (1:1 or group), reply, react, edit, delete for everyone,
 * mark read (with read receipts when the setting is on), and the typing indicator.
 */
export class MessageService {
  private typingSent = new Map<string, number>();
  private typingIdle = new Map<string, ReturnType<typeof setTimeout>>();

  constructor(
    private readonly messenger: Messenger,
    private readonly receipts: Receipts,
    private readonly conversations: ConversationStore,
  ) {}

  /** Sends a text (a reply when `replyTo` names a message); it shows at once as "sending", then "sent". */
  async send(conv: string, text: string, replyTo?: string): Promise<void> {
    this.stopTyping(conv);
    const pending = this.conversations.addPending(conv, text);
    try {
      const group = await this.messenger.group(conv);
      if (replyTo) await this.messenger.reply(conv, replyTo, text);
      else if (group) await this.messenger.sendGroupText(conv, text);
      else await this.messenger.sendText(conv, text);
    } catch (err) {
      await this.conversations.settle(pending, false);
      throw err;
    }
    await this.conversations.settle(pending, true);
  }

  /** Our reaction to a message: the same emoji again removes it. */
  async react(conv: string, id: string, emoji: string): Promise<void> {
    const mine = this.conversations.get(conv)?.messages.find((m) => m.id === id)?.reactions.some((r) => r.mine && r.emoji === emoji);
    await this.messenger.react(conv, id, mine ? null : emoji);
    await this.conversations.refresh(conv);
  }

  async edit(conv: string, id: string, text: string): Promise<void> {
    await this.messenger.edit(conv, id, text);
    await this.conversations.refresh(conv);
  }

  /** Deletes our message everywhere: queued copies are recalled, delivered ones deleted by an E2EE "del". Returns how many were recalled. */
  async deleteForEveryone(conv: string, id: string): Promise<number> {
    const { recalled } = await this.messenger.deleteForEveryone(conv, id);
    await this.conversations.refresh(conv);
    return recalled;
  }

  /** The conversation is on screen: its unread messages are read (read-mode timers start; receipts when on). */
  async markRead(conv: string): Promise<void> {
    const c = this.conversations.get(conv);
    if (!c || c.unread === 0) return;
    const ids = c.messages.filter((m) => !m.outgoing && m.readAt === undefined && !m.id.startsWith('pending-')).map((m) => m.id);
    for (const id of ids) await this.messenger.markRead(conv, id);
    await this.conversations.refresh(conv);
    await this.receipts.sendRead(conv, ids).catch(() => undefined);
  }

  /** A key was pressed in the composer of a 1:1 chat (typing indicators are per account, live only). */
  typing(conv: string): void {
    if (this.conversations.get(conv)?.kind !== 'direct') return;
    const now = Date.now();
    if (now - (this.typingSent.get(conv) ?? 0) > TYPING_REPEAT_MS) {
      this.typingSent.set(conv, now);
      void this.messenger.client.typing(conv, 'started').catch(() => undefined);
    }
    clearTimeout(this.typingIdle.get(conv));
    this.typingIdle.set(conv, setTimeout(() => this.stopTyping(conv), TYPING_IDLE_MS));
  }

  private stopTyping(conv: string): void {
    clearTimeout(this.typingIdle.get(conv));
    this.typingIdle.delete(conv);
    if (!this.typingSent.has(conv)) return;
    this.typingSent.delete(conv);
    void this.messenger.client.typing(conv, 'stopped').catch(() => undefined);
  }
}

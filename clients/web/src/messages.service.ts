import type { ConversationStore } from './conversations.store';
import type { WebUmbra } from './session.service';

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
    private readonly umbra: WebUmbra,
    private readonly conversations: ConversationStore,
  ) {}

  /** Sends a text (a reply when `replyTo` names a message); it shows at once as "sending", then "sent". */
  async send(conv: string, text: string, replyTo?: string): Promise<void> {
    this.stopTyping(conv);
    const pending = this.conversations.addPending(conv, text);
    try {
      if (replyTo) await this.umbra.messages.reply(conv, replyTo, text);
      else await this.umbra.messages.send(conv, text);
    } catch (err) {
      await this.conversations.settle(pending, false);
      throw err;
    }
    await this.conversations.settle(pending, true);
  }

  /** Our reaction to a message: the same emoji again removes it. */
  async react(conv: string, id: string, emoji: string): Promise<void> {
    const mine = this.conversations.get(conv)?.messages.find((m) => m.id === id)?.reactions.some((r) => r.mine && r.emoji === emoji);
    await this.umbra.messages.react(conv, id, mine ? null : emoji);
    await this.conversations.refresh(conv);
  }

  async edit(conv: string, id: string, text: string): Promise<void> {
    await this.umbra.messages.edit(conv, id, text);
    await this.conversations.refresh(conv);
  }

  /** Deletes our message everywhere: queued copies are recalled, delivered ones deleted by an E2EE "del". Returns how many were recalled. */
  async deleteForEveryone(conv: string, id: string): Promise<number> {
    const { recalled } = await this.umbra.messages.delete(conv, id);
    await this.conversations.refresh(conv);
    return recalled;
  }

  /** The conversation is on screen: its unread messages are read (read-mode timers start; receipts when on). */
  async markRead(conv: string): Promise<void> {
    const c = this.conversations.get(conv);
    if (!c || c.unread === 0) return;
    // A read receipt that cannot go out now is no reason to keep the messages unread.
    await this.umbra.messages.readAll(conv).catch(() => undefined);
    await this.conversations.refresh(conv);
  }

  /** A key was pressed in the composer of a 1:1 chat (typing indicators are per account, live only). */
  typing(conv: string): void {
    if (this.conversations.get(conv)?.kind !== 'direct') return;
    const now = Date.now();
    if (now - (this.typingSent.get(conv) ?? 0) > TYPING_REPEAT_MS) {
      this.typingSent.set(conv, now);
      void this.umbra.messages.typing(conv, 'started').catch(() => undefined);
    }
    clearTimeout(this.typingIdle.get(conv));
    this.typingIdle.set(conv, setTimeout(() => this.stopTyping(conv), TYPING_IDLE_MS));
  }

  private stopTyping(conv: string): void {
    clearTimeout(this.typingIdle.get(conv));
    this.typingIdle.delete(conv);
    if (!this.typingSent.has(conv)) return;
    this.typingSent.delete(conv);
    void this.umbra.messages.typing(conv, 'stopped').catch(() => undefined);
  }
}

import { b64uEncode, randomBytes, type Content } from '@umbra/crypto';
import type { SendResult } from '@umbra/protocol';
import type { HistoryEntry, Timer } from '../history';
import type { UmbraCore } from './umbra.core';
import { UmbraError } from './umbra.errors';

/** A message this device sent: `id` names it for reply/react/edit/delete, `clientMessageId` for recall. */
export interface SentMessage {
  conv: string;
  id: string;
  clientMessageId: string;
  serverTimestamp: number;
}

/** The quoted message inside a reply's Content: its id, author and up to 200 characters of its text. */
export interface ReplyQuote {
  id: string;
  from: string;
  text?: string;
}

const MAX_QUOTE = 200;
const MAX_EMOJI_CODEPOINTS = 8;

/** A fresh Content of kind `k` (id and timestamp filled in). */
export function newContent(core: UmbraCore, k: Content['k'], fields: Partial<Content> = {}): Content {
  return { v: 1, id: b64uEncode(randomBytes(16)), ts: core.now(), k, ...fields };
}

/** Sends a user-visible Content to a conversation, a group (sender keys) or a peer (pairwise), under its timer. */
export async function sendToConversation(core: UmbraCore, conv: string, content: Content): Promise<SentMessage> {
  core.assertOpen();
  const isGroup = (await core.messenger.group(conv)) !== undefined;
  const result: SendResult = isGroup ? await core.messenger.sendGroupContent(conv, content) : await core.messenger.sendUserContent(conv, content);
  return { conv, id: content.id, clientMessageId: result.clientMessageId, serverTimestamp: result.serverTimestamp };
}

/**
 * `umbra.messages`: one API for 1:1 and group conversations. A conversation is a peer's account id
 * ("um1…") or a group id; every call works on both.
 */
export class MessagesPart {
  constructor(private readonly core: UmbraCore) {}

  /** Sends a text; it is in this device's history when the promise resolves. */
  async send(conv: string, text: string): Promise<SentMessage> {
    if (text.length === 0) throw new UmbraError('INVALID_ARGUMENT', 'a message needs some text');
    return sendToConversation(this.core, conv, newContent(this.core, 'text', { text }));
  }

  /** Replies to message `id`, quoting it (every device shows the quote, even without the original). */
  async reply(conv: string, id: string, text: string): Promise<SentMessage> {
    if (text.length === 0) throw new UmbraError('INVALID_ARGUMENT', 'a reply needs some text');
    const quoted = await this.existing(conv, id);
    const reply: ReplyQuote = { id, from: quoted.from, ...(typeof quoted.content.text === 'string' ? { text: quoted.content.text.slice(0, MAX_QUOTE) } : {}) };
    return sendToConversation(this.core, conv, newContent(this.core, 'text', { text, reply }));
  }

  /** Reacts to message `id` (one reaction per account: a new one replaces ours; `null` removes it). */
  async react(conv: string, id: string, emoji: string | null): Promise<void> {
    if (emoji !== null && (emoji.length === 0 || [...emoji].length > MAX_EMOJI_CODEPOINTS)) throw new UmbraError('INVALID_ARGUMENT', 'a reaction is one emoji (null removes yours)');
    await this.existing(conv, id);
    await this.core.messenger.react(conv, id, emoji);
  }

  /** Replaces the text of our own message `id` on every device (shown as edited). */
  async edit(conv: string, id: string, text: string): Promise<void> {
    if (text.length === 0) throw new UmbraError('INVALID_ARGUMENT', 'an edit needs some text (delete removes a message)');
    await this.own(conv, id);
    await this.core.messenger.edit(conv, id, text);
  }

  /**
   * Deletes our own message `id` for everyone: copies the servers still hold are recalled (an
   * offline device never receives it), devices that have it get an end-to-end encrypted delete.
   */
  async delete(conv: string, id: string): Promise<{ recalled: number }> {
    await this.own(conv, id);
    return this.core.messenger.deleteForEveryone(conv, id);
  }

  /**
   * Recall only: the servers delete the still-queued copies of this device's send `clientMessageId`
   * (what `send` answered) in `conv`; copies already delivered are out of reach (use `delete`).
   */
  async recall(conv: string, clientMessageId: string): Promise<{ recalled: number }> {
    this.core.assertOpen();
    return this.core.messenger.recall(conv, clientMessageId);
  }

  /**
   * Marks a received message as displayed: a read-mode vanishing timer starts, here and on the
   * server, and its author gets a read receipt (unless `account.setReadReceipts(false)`).
   */
  async markRead(conv: string, id: string): Promise<HistoryEntry> {
    this.core.assertOpen();
    const entry = await this.core.messenger.markRead(conv, id);
    if (!entry) throw new UmbraError('UNKNOWN_MESSAGE', `no message ${id} in this conversation on this device`);
    await this.core.receipts.sendRead(conv, [id]);
    return entry;
  }

  /**
   * Marks every received message of the conversation not displayed yet as displayed (what a chat
   * does when it is on screen): read-mode timers start and each author gets one read receipt
   * (unless read receipts are off). Returns the ids it marked.
   */
  async readAll(conv: string): Promise<string[]> {
    this.core.assertOpen();
    const me = this.core.client.identity.accountIdText;
    const ids: string[] = [];
    for (const e of await this.core.messenger.history.list(conv)) {
      if (e.outgoing || e.from === me || e.readAt !== undefined) continue;
      if (await this.core.messenger.markRead(conv, e.id)) ids.push(e.id);
    }
    if (ids.length > 0) await this.core.receipts.sendRead(conv, ids);
    return ids;
  }

  /** Tells the authors of these received messages that this device has them (delivery receipts); how many receipts went out. */
  markDelivered(conv: string, ids: string[]): Promise<number> {
    this.core.assertOpen();
    return this.core.receipts.sendDelivered(conv, ids);
  }

  /** This device's copy of a conversation, oldest first; vanished messages are never in it. */
  history(conv: string): Promise<HistoryEntry[]> {
    return this.core.messenger.history.list(conv);
  }

  /** The message this device sent as `clientMessageId` (what `send` answered), while the history has it. */
  sent(clientMessageId: string): Promise<HistoryEntry | undefined> {
    return this.core.messenger.findOwnSend(clientMessageId);
  }

  /** One message of the history, or undefined. */
  get(conv: string, id: string): Promise<HistoryEntry | undefined> {
    return this.core.messenger.history.get(conv, id);
  }

  /** Every conversation with a message on this device. */
  conversations(): Promise<string[]> {
    return this.core.state.conversations();
  }

  /** Tells the peer (or every group member) that we started or stopped typing; live only, nothing is queued. */
  async typing(conv: string, state: 'started' | 'stopped'): Promise<void> {
    this.core.assertOpen();
    const group = await this.core.messenger.group(conv);
    const me = this.core.client.identity.accountIdText;
    for (const to of group ? group.members.filter((m) => m !== me) : [conv]) await this.core.client.typing(to, state, group ? conv : undefined);
  }

  /** The conversation's vanishing timer, or null when messages stay. */
  timer(conv: string): Promise<Timer | null> {
    return this.core.messenger.timer(conv);
  }

  /**
   * Sets the conversation's vanishing timer (seconds, counted from sending or, mode `read`, from the
   * first display); every later message carries it and the peer's app adopts it. null turns it off.
   */
  async setTimer(conv: string, timer: Timer | null): Promise<void> {
    if (timer && (!Number.isInteger(timer.t) || timer.t < 1)) throw new UmbraError('INVALID_ARGUMENT', 'a timer is a whole number of seconds, at least 1');
    this.core.assertOpen();
    if (await this.core.messenger.group(conv)) await this.core.messenger.setGroupTimer(conv, timer);
    else await this.core.messenger.setTimer(conv, timer);
  }

  private async existing(conv: string, id: string): Promise<HistoryEntry> {
    this.core.assertOpen();
    const entry = await this.core.messenger.history.get(conv, id);
    if (!entry) throw new UmbraError('UNKNOWN_MESSAGE', `no message ${id} in this conversation on this device`);
    return entry;
  }

  private async own(conv: string, id: string): Promise<HistoryEntry> {
    const entry = await this.existing(conv, id);
    if (entry.from !== this.core.client.identity.accountIdText) throw new UmbraError('NOT_YOUR_MESSAGE', 'only your own messages can be edited or deleted for everyone');
    return entry;
  }
}

import type { Content } from '@umbra/crypto';
import type { RecallResult, SendResult } from '@umbra/protocol';
import type { KeyValueStore } from '../store';
import type { GroupsService } from './groups.service';
import { newId, type MessagingContext } from './messaging.context';
import type { PairwiseSender } from './pairwise.sender';

const NO_SUCH_MESSAGE = 'no such message in this conversation on this device';
/** How much of the quoted message's text a reply carries. */
const MAX_QUOTE = 200;

/**
 * What changes an earlier message (§7): replies that quote it, reactions, edits, delete for everyone
 * (with recall of the still-queued copies), sent to the conversation and applied to the history.
 */
export class AnnotationsService {
  constructor(
    private readonly ctx: MessagingContext,
    private readonly pairwise: PairwiseSender,
    private readonly groups: GroupsService,
  ) {}

  /**
   * Replies to message `id` of the conversation: a text whose Content carries `reply: {id, from, text}`
   * (the quoted message's id, author and up to 200 characters of its text, so every device can show
   * the quote even without the original).
   */
  async reply(conv: string, id: string, text: string): Promise<SendResult> {
    const quoted = await this.ctx.history.get(conv, id);
    if (!quoted) throw new Error(NO_SUCH_MESSAGE);
    const reply = { id, from: quoted.from, ...(typeof quoted.content.text === 'string' ? { text: quoted.content.text.slice(0, MAX_QUOTE) } : {}) };
    const content: Content = { v: 1, id: newId(), ts: this.ctx.now(), k: 'text', text, reply };
    return (await this.groups.get(conv)) ? this.groups.send(conv, content) : this.pairwise.sendUser(conv, content);
  }

  /** Reacts to message `id` with an emoji (one reaction per account; `null` removes ours). */
  async react(conv: string, id: string, emoji: string | null): Promise<void> {
    if (!(await this.ctx.history.get(conv, id))) throw new Error(NO_SUCH_MESSAGE);
    await this.sendAndApply(conv, { v: 1, id: newId(), ts: this.ctx.now(), k: 'react', target: id, emoji: emoji ?? '' });
  }

  /** Replaces the text of our own message `id`; every device keeps the latest edit (by its ts, then id). */
  async edit(conv: string, id: string, text: string): Promise<void> {
    const entry = await this.ctx.history.get(conv, id);
    if (!entry) throw new Error(NO_SUCH_MESSAGE);
    if (entry.from !== this.ctx.client.identity.accountIdText) throw new Error('only your own messages can be edited');
    await this.sendAndApply(conv, { v: 1, id: newId(), ts: this.ctx.now(), k: 'edit', target: id, text });
  }

  /**
   * Delete for everyone: our own message `id` in conversation `conv` (peer account or group id). When
   * this device sent it, its still-queued copies are recalled first (a device that was offline never
   * receives the ciphertext); then an E2EE Content{k:"del", target} tells every device that already has
   * it (the peer's or members', and our others) to delete it. Returns how many copies were recalled.
   */
  async deleteForEveryone(conv: string, id: string): Promise<{ recalled: number }> {
    const me = this.ctx.client.identity;
    const entry = await this.ctx.history.get(conv, id);
    if (!entry) throw new Error(NO_SUCH_MESSAGE);
    if (entry.from !== me.accountIdText) throw new Error('only your own messages can be deleted for everyone');
    const [account, device, clientMessageId] = entry.envelope?.split(':') ?? [];
    const sentHere = account === me.accountIdText && Number(device) === me.device.deviceId;
    const recalled = sentHere && clientMessageId ? (await this.recall(conv, clientMessageId)).recalled : 0;
    await this.send(conv, { v: 1, id: newId(), ts: this.ctx.now(), k: 'del', target: id });
    await this.ctx.history.delete(conv, id);
    return { recalled };
  }

  /**
   * Recalls the still-queued copies of this device's send `clientMessageId` in conversation `conv`:
   * the request names the accounts it went to (the group's current members, or the peer, and ours),
   * so the server deletes within their queues only.
   */
  async recall(conv: string, clientMessageId: string): Promise<RecallResult> {
    const me = this.ctx.client.identity.accountIdText;
    const group = await this.groups.get(conv);
    return this.ctx.client.recall(clientMessageId, [...new Set([me, ...(group ? group.members : [conv])])]);
  }

  /**
   * Applies a react, edit or del to its target in the history: del and edit only from the target's
   * author; an edit or reaction older than the one kept (ts, then Content.id) changes nothing.
   */
  async apply(msg: { from: string; content: Content; conv: string }, kv: KeyValueStore): Promise<void> {
    const c = msg.content;
    const history = this.ctx.history;
    const target = typeof c.target === 'string' ? await history.get(msg.conv, c.target) : undefined;
    if (!target) return;
    const newer = (prev: { ts: number; id: string } | undefined) => !prev || c.ts > prev.ts || (c.ts === prev.ts && c.id > prev.id);
    if (c.k === 'del') {
      if (target.from === msg.from) await history.delete(msg.conv, target.id);
      return;
    }
    if (c.k === 'edit') {
      if (target.from !== msg.from || typeof c.text !== 'string' || !newer(target.edited)) return;
      target.edited = { text: c.text, ts: c.ts, id: c.id };
    } else {
      const emoji = typeof c.emoji === 'string' ? c.emoji : '';
      const reactions = { ...(target.reactions ?? {}) };
      if (!newer(reactions[msg.from])) return;
      reactions[msg.from] = { emoji, ts: c.ts, id: c.id };
      target.reactions = reactions;
    }
    await history.add(target, kv);
  }

  private async sendAndApply(conv: string, content: Content): Promise<void> {
    await this.send(conv, content);
    await this.apply({ from: this.ctx.client.identity.accountIdText, content, conv }, this.ctx.store);
  }

  /** Sends a react/edit/del to the conversation: the peer's devices, or pairwise to every group member; sync copies to ours. */
  private async send(conv: string, content: Content): Promise<void> {
    const me = this.ctx.client.identity.accountIdText;
    const group = await this.groups.get(conv);
    if (!group) {
      await this.pairwise.send(conv, content);
      return;
    }
    // Our other devices get one sync copy per member and apply the first (same Content.id).
    for (const m of group.members) if (m !== me) await this.pairwise.send(m, { ...content, gid: conv });
  }
}

import type { Timer } from '../history';
import type { GroupState } from '../messenger';
import { newContent, sendToConversation, type SentMessage } from './messages.part';
import type { UmbraCore } from './umbra.core';
import { UmbraError } from './umbra.errors';

/** The longest group name members accept (PROTOCOL.md §6 state message). */
const MAX_GROUP_NAME = 100;

/**
 * `umbra.groups`: groups under the single-writer admin model (PROTOCOL.md §6). The creator is the
 * admin and the only one who changes members; every membership change starts a new epoch, so the
 * next send rekeys and a removed member gets no new sender key. Messages go through sender keys.
 */
export class GroupsPart {
  constructor(private readonly core: UmbraCore) {}

  /** Creates a group with us as admin and these members (account ids), optionally named (shown to every member); returns its id. */
  async create(members: string[], name?: string): Promise<string> {
    this.core.assertOpen();
    if (name !== undefined && (name.trim().length === 0 || name.length > MAX_GROUP_NAME)) throw new UmbraError('INVALID_ARGUMENT', `a group name is 1–${MAX_GROUP_NAME} characters`);
    return this.core.messenger.createGroup(members, name);
  }

  async add(gid: string, member: string): Promise<GroupState> {
    await this.administered(gid);
    return this.core.messenger.addMember(gid, member);
  }

  async remove(gid: string, member: string): Promise<GroupState> {
    await this.administered(gid);
    return this.core.messenger.removeMember(gid, member);
  }

  /** Sends a text to every member device (same as messages.send with the group id). */
  async send(gid: string, text: string): Promise<SentMessage> {
    await this.known(gid);
    if (text.length === 0) throw new UmbraError('INVALID_ARGUMENT', 'a message needs some text');
    return sendToConversation(this.core, gid, newContent(this.core, 'text', { text }));
  }

  /** The group's state (admin, epoch, members), or undefined when this device is not in it. */
  get(gid: string): Promise<GroupState | undefined> {
    return this.core.messenger.group(gid);
  }

  /** The member account ids, admin first. */
  async members(gid: string): Promise<string[]> {
    return (await this.known(gid)).members;
  }

  /** Every group this device knows. */
  list(): Promise<GroupState[]> {
    return this.core.state.groups();
  }

  /** Sets the group's vanishing timer for every member (any member may); null turns it off. */
  async setTimer(gid: string, timer: Timer | null): Promise<void> {
    await this.known(gid);
    if (timer && (!Number.isInteger(timer.t) || timer.t < 1)) throw new UmbraError('INVALID_ARGUMENT', 'a timer is a whole number of seconds, at least 1');
    await this.core.messenger.setGroupTimer(gid, timer);
  }

  timer(gid: string): Promise<Timer | null> {
    return this.core.messenger.timer(gid);
  }

  private async known(gid: string): Promise<GroupState> {
    this.core.assertOpen();
    const group = await this.core.messenger.group(gid);
    if (!group) throw new UmbraError('UNKNOWN_GROUP', `no group ${gid} on this device`);
    return group;
  }

  private async administered(gid: string): Promise<GroupState> {
    const group = await this.known(gid);
    if (group.admin !== this.core.client.identity.accountIdText) throw new UmbraError('NOT_GROUP_ADMIN', 'only the group admin (its creator) changes its members');
    return group;
  }
}

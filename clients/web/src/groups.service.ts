import type { Conversation } from './conversation.model';
import type { ConversationStore } from './conversations.store';
import type { WebUmbra } from './session.service';

export interface Member {
  id: string;
  label: string;
  admin: boolean;
  me: boolean;
}

/** Resolves "@handle" or "um1…" to an account id and a label (checked against the key-transparency log). */
export type PeerResolver = (text: string) => Promise<{ id: string; label?: string }>;

const MAX_NAME = 100;

/** Group chats (§6, single-writer admin): create with a name and members, add and remove members, the member list. */
export class GroupService {
  private readonly lookedUp = new Set<string>();

  constructor(
    private readonly umbra: WebUmbra,
    private readonly conversations: ConversationStore,
    private readonly resolve: PeerResolver,
  ) {}

  /** `memberTexts`: handles or account ids, separated by commas, spaces or new lines. */
  async create(name: string, memberTexts: string): Promise<Conversation> {
    const title = name.trim();
    if (!title) throw new Error('Give the group a name.');
    if (title.length > MAX_NAME) throw new Error(`A group name is at most ${MAX_NAME} characters.`);
    const texts = memberTexts.split(/[\s,]+/).filter(Boolean);
    if (texts.length === 0) throw new Error('Add at least one member by @handle or account id.');
    const members: string[] = [];
    for (const text of texts) members.push(await this.resolveMember(text));
    const gid = await this.umbra.groups.create(members, title);
    return this.conversations.open(gid, title);
  }

  async add(gid: string, memberText: string): Promise<void> {
    await this.umbra.groups.add(gid, await this.resolveMember(memberText));
    await this.conversations.refresh(gid);
  }

  async remove(gid: string, member: string): Promise<void> {
    await this.umbra.groups.remove(gid, member);
    await this.conversations.refresh(gid);
  }

  /** The members with their labels; unknown accounts' handles are looked up once, in the background. */
  async members(c: Conversation): Promise<Member[]> {
    const me = this.umbra.account.id;
    const out: Member[] = [];
    for (const id of c.group?.members ?? []) {
      out.push({ id, label: id === me ? 'You' : await this.conversations.label(id), admin: id === c.group?.admin, me: id === me });
      if (id !== me && !this.lookedUp.has(id)) {
        this.lookedUp.add(id);
        void this.lookUp(id, c.id);
      }
    }
    return out;
  }

  private async resolveMember(text: string): Promise<string> {
    const peer = await this.resolve(text);
    if (peer.label) await this.conversations.setLabel(peer.id, peer.label);
    return peer.id;
  }

  private async lookUp(id: string, gid: string): Promise<void> {
    const known = await this.conversations.label(id);
    if (known.startsWith('@')) return;
    try {
      const account = await this.umbra.account.lookup(id);
      if (account.handle) {
        await this.conversations.setLabel(id, `@${account.handle}`);
        await this.conversations.refresh(gid);
      }
    } catch {
      // A label is a nicety: without one the short account id is shown.
    }
  }
}

import { parseDuration, type Command, type CommandContext } from '../command';
import { CliError } from '../cli-error';
import type { Session } from '../session';
import { describeTimer } from './messaging.command';

const OUTBOX_NOTE = 'the rest goes out with the next umbra command that connects';

/** Connected, with queued control messages (group state, sender keys) applied first. */
async function groupSession(ctx: CommandContext): Promise<Session> {
  const s = await ctx.session();
  await s.umbra();
  await s.connect();
  await new Promise((r) => setTimeout(r, 300));
  await s.client.settle();
  return s;
}

async function knownGroup(s: Session, gid: string): Promise<void> {
  if (!(await (await s.umbra()).groups.get(gid))) throw new CliError(`no group ${gid} on this device (group ids are printed by umbra group create, and arrive with the first message of a group)`);
}

export const groupCommands: Command[] = [
  {
    words: ['group', 'create'],
    args: '<member...>',
    summary: 'a new group with you as admin; prints its id',
    async run(ctx) {
      const s = await ctx.session();
      const members = await Promise.all(ctx.args.map((m) => s.resolvePeer(m)));
      const gs = await groupSession(ctx);
      const gid = await gs.whileConnected((await gs.umbra()).groups.create(members.map((m) => m.accountId)), OUTBOX_NOTE);
      await gs.client.settle();
      ctx.out.result(gid, { group: gid, members: members.map((m) => m.accountId) });
    },
  },
  ...(['add', 'remove'] as const).map(
    (op): Command => ({
      words: ['group', op],
      args: '<group-id> <member>',
      summary: op === 'add' ? 'add a member (admin only; a new epoch, so senders rekey)' : 'remove a member (admin only; a new epoch, so senders rekey)',
      async run(ctx) {
        const s = await ctx.session();
        const [gid, memberText] = ctx.args as [string, string];
        const member = await s.resolvePeer(memberText);
        const gs = await groupSession(ctx);
        await knownGroup(gs, gid);
        const { groups } = await gs.umbra();
        const state = await gs.whileConnected(op === 'add' ? groups.add(gid, member.accountId) : groups.remove(gid, member.accountId), OUTBOX_NOTE);
        await gs.client.settle();
        ctx.out.result(`${op === 'add' ? 'added' : 'removed'} ${member.label}; the group has ${state.members.length} members (epoch ${state.epoch})`, state);
      },
    }),
  ),
  {
    words: ['group', 'send'],
    args: '<group-id> <text...>',
    summary: 'send to the group with sender keys',
    async run(ctx) {
      const [gid, ...words] = ctx.args as [string, ...string[]];
      const gs = await groupSession(ctx);
      await knownGroup(gs, gid);
      const res = await gs.whileConnected((await gs.umbra()).groups.send(gid, words.join(' ')), OUTBOX_NOTE);
      await gs.client.settle();
      ctx.out.result('sent to the group', { sent: true, group: gid, serverTimestamp: res.serverTimestamp });
    },
  },
  {
    words: ['group', 'timer'],
    args: '<group-id> <off|30s|5m|1h|7d>',
    flags: { read: { kind: 'boolean' } },
    summary: 'vanishing messages in the group (any member may set it)',
    async run(ctx) {
      const [gid, duration] = ctx.args as [string, string];
      const t = parseDuration(duration);
      const timer = t > 0 ? { t, m: ctx.flags.has('read') ? ('read' as const) : ('send' as const) } : null;
      const gs = await groupSession(ctx);
      await knownGroup(gs, gid);
      await gs.whileConnected((await gs.umbra()).groups.setTimer(gid, timer), OUTBOX_NOTE);
      await gs.client.settle();
      ctx.out.result(`${describeTimer(timer)} in the group`, { group: gid, timer });
    },
  },
];

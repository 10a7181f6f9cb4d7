import path from 'node:path';
import { parseDuration, parsePositiveInt, type Command } from '../command';
import { CliError } from '../cli-error';
import { identityChangeData, warnIdentityChange } from '../identity-change';
import type { Session } from '../session';
import { formatBytes, formatDuration, formatTime } from '../output';
import { progressBar } from '../progress';

const OUTBOX_NOTE = 'the message stays in the outbox and goes out with the next umbra command that connects';

export function describeTimer(timer: { t: number; m: 'send' | 'read' } | null): string {
  if (!timer) return 'vanishing messages: off';
  return `vanishing messages: ${formatDuration(timer.t)} after ${timer.m === 'read' ? 'they are read' : 'sending'}`;
}

/** A conversation named on the command line: a group id this device knows, else a peer (account id or @handle). */
async function resolveConv(s: Session, text: string): Promise<{ conv: string; label: string }> {
  const umbra = await s.umbra();
  if (/^[A-Za-z0-9_-]{43}$/.test(text) && (await umbra.groups.get(text))) return { conv: text, label: 'the group' };
  const peer = await s.resolvePeer(text);
  return { conv: peer.accountId, label: peer.label };
}

const MESSAGE_ID = /^[A-Za-z0-9_-]{22}$/;

function messageId(text: string): string {
  if (!MESSAGE_ID.test(text)) throw new CliError(`not a message id: ${text} (22 characters of base64url; history --ids shows them)`);
  return text;
}

/** reply / react / edit: the message id, the conversation it is in, and a connected front door. */
async function annotationTarget(session: () => Promise<Session>, convText: string, idText: string) {
  const s = await session();
  const id = messageId(idText);
  const umbra = await s.umbra();
  const { conv, label } = await resolveConv(s, convText);
  await s.connect();
  return { s, id, umbra, conv, label };
}

export const messagingCommands: Command[] = [
  {
    words: ['send'],
    args: '<account-id|@handle> <text...>',
    summary: 'send an end-to-end encrypted message to every device of the peer',
    async run({ session, out, args }) {
      const s = await session();
      const [peerText, ...words] = args;
      const umbra = await s.umbra();
      const peer = await s.resolvePeer(peerText!);
      const change = await warnIdentityChange(s, out, peer);
      await s.connect();
      const res = await s.whileConnected(umbra.messages.send(peer.accountId, words.join(' ')), OUTBOX_NOTE);
      if (!out.json) out.note(`message id ${res.clientMessageId} (umbra delete ${res.clientMessageId} deletes it for everyone)`);
      out.result(`sent to ${peer.label}`, {
        sent: true,
        to: peer.accountId,
        serverTimestamp: res.serverTimestamp,
        clientMessageId: res.clientMessageId,
        ...(change ? { identityChange: identityChangeData(change) } : {}),
      });
    },
  },
  {
    words: ['send-file'],
    args: '<account-id|@handle> <path>',
    flags: { type: { kind: 'string', value: 'MIME' }, 'expires-in': { kind: 'string', value: 'SECONDS' } },
    summary:
      'encrypt a file of any size as it streams, upload it (resumable: run the same command again after a\ncrash) and send the pointer end to end; the file vanishes with the message (conversation timer,\nor --expires-in)',
    async run({ session, out, args, flags }) {
      const s = await session();
      const [peerText, file] = args as [string, string];
      const expiresIn = typeof flags.get('expires-in') === 'string' ? parsePositiveInt(flags.get('expires-in') as string, '--expires-in') : 0;
      const type = flags.get('type');
      const umbra = await s.umbra();
      const peer = await s.resolvePeer(peerText);
      await warnIdentityChange(s, out, peer);
      await s.connect();
      const bar = progressBar(`uploading ${path.basename(file)}`);
      // --expires-in makes this one message vanish; otherwise the conversation's timer applies.
      const result = await s.whileConnected(
        umbra.files.send(peer.accountId, file, {
          ...(typeof type === 'string' ? { contentType: type } : {}),
          ...(expiresIn > 0 ? { timer: { t: expiresIn, m: 'send' as const } } : {}),
          ...(bar ? { onProgress: bar } : {}),
        }),
        'run the same command again to resume',
      );
      out.result(`sent ${path.basename(file)} (${formatBytes(result.pointer.size)}) to ${peer.label}`, {
        sent: true,
        to: peer.accountId,
        attachment: result.pointer.oid,
        size: result.pointer.size,
        serverTimestamp: result.serverTimestamp,
      });
    },
  },
  {
    words: ['timer'],
    args: '<account-id|@handle> <off|30s|5m|1h|7d>',
    flags: { read: { kind: 'boolean' } },
    summary:
      "vanishing messages in this conversation: deleted that long after sending (or, with --read, after\nthe peer's device first shows them), on every device and on the servers; the peer's app adopts it",
    async run({ session, out, args, flags }) {
      const s = await session();
      const t = parseDuration(args[1]!);
      const umbra = await s.umbra();
      const peer = await s.resolvePeer(args[0]!);
      await s.connect();
      const timer = t > 0 ? { t, m: flags.has('read') ? ('read' as const) : ('send' as const) } : null;
      await s.whileConnected(umbra.messages.setTimer(peer.accountId, timer), OUTBOX_NOTE);
      out.result(`${describeTimer(timer)} with ${peer.label}`, { timer });
    },
  },
  {
    words: ['history'],
    args: '<account-id|@handle|group-id>',
    flags: { ids: { kind: 'boolean' } },
    summary: "this device's copy of a conversation (vanished messages are gone); --ids shows message ids\n(for reply, react, edit)",
    async run({ session, out, args, flags }) {
      const s = await session();
      const umbra = await s.umbra();
      const peer = await resolveConv(s, args[0]!);
      const entries = await umbra.messages.history(peer.conv);
      if (!out.json && entries.length === 0) out.note(`no messages with ${peer.label} on this device`);
      for (const e of entries) {
        const body = e.edited?.text ?? e.content.text ?? (e.content.k === 'att' ? '(a file)' : `(${e.content.k})`);
        const quote = e.content.reply as { from?: string; text?: string } | undefined;
        const quoted = quote ? `(replying to ${quote.from === s.identity.accountIdText ? 'me' : (quote.from ?? '?')}: "${quote.text ?? '…'}") ` : '';
        const reactions = Object.values(e.reactions ?? {}).map((r) => r.emoji).filter(Boolean);
        const text = `${quoted}${body}${e.edited ? ' (edited)' : ''}${reactions.length ? `  [${reactions.join(' ')}]` : ''}`;
        const vanishes = e.deleteAt ? `  [vanishes ${formatTime(e.deleteAt)}]` : '';
        const idPrefix = flags.has('ids') ? `[${e.id}] ` : '';
        const [account, device, clientMessageId] = e.envelope?.split(':') ?? [];
        const ownSend = account === s.identity.accountIdText && Number(device) === s.identity.device.deviceId;
        out.result(`${idPrefix}${formatTime(e.content.ts)}  ${e.outgoing ? 'me' : peer.label}: ${text}${vanishes}`, {
          id: e.id,
          ...(ownSend ? { clientMessageId } : {}),
          from: e.from,
          outgoing: e.outgoing,
          kind: e.content.k,
          text: e.edited?.text ?? e.content.text ?? null,
          edited: e.edited !== undefined,
          ...(quote ? { replyTo: e.content.reply } : {}),
          reactions: Object.fromEntries(Object.entries(e.reactions ?? {}).filter(([, r]) => r.emoji).map(([a, r]) => [a, r.emoji])),
          ts: e.content.ts,
          vanishesAt: e.deleteAt,
        });
      }
    },
  },
  {
    words: ['delete'],
    args: '<message-id> [account-id|@handle|group-id]',
    summary:
      'delete a message this device sent, for everyone: copies the servers still hold are recalled (a device\nthat was offline never receives it) and devices that have it get an end-to-end encrypted delete;\n<message-id> is what send printed (history --json shows it as clientMessageId). A message no longer\nin this device\'s history can only be recalled: name its conversation',
    async run({ session, out, args }) {
      const s = await session();
      const clientMessageId = messageId(args[0]!);
      const umbra = await s.umbra();
      const entry = await umbra.messages.sent(clientMessageId);
      if (!entry) {
        // Vanished, or sent by an older version: the servers' copies can still be recalled, within the accounts of a conversation.
        if (!args[1]) throw new CliError(`message ${clientMessageId} is not in this device's history; to recall the copies the servers still hold, name its conversation: umbra delete ${clientMessageId} <account-id|@handle|group-id>`);
        const { conv } = await resolveConv(s, args[1]);
        await s.connect();
        const { recalled } = await umbra.messages.recall(conv, clientMessageId);
        out.result(`recalled ${recalled} undelivered ${recalled === 1 ? 'copy' : 'copies'}; the message is not in this device's history, so no delete was sent to devices that have it`, {
          deleted: false, conv, clientMessageId, recalled,
        });
        return;
      }
      await s.connect();
      const { recalled } = await s.whileConnected(umbra.messages.delete(entry.conv, entry.id), OUTBOX_NOTE);
      out.result(`deleted for everyone (${recalled} undelivered ${recalled === 1 ? 'copy' : 'copies'} recalled before delivery)`, {
        deleted: true, conv: entry.conv, clientMessageId, recalled,
      });
    },
  },
  {
    words: ['reply'],
    args: '<account-id|@handle|group-id> <message-id> <text...>',
    summary: 'reply to a message, quoting it (history --ids shows message ids)',
    async run({ session, out, args }) {
      const [convText, idText, ...words] = args as [string, string, ...string[]];
      const { s, id, umbra, conv, label } = await annotationTarget(session, convText, idText);
      const res = await s.whileConnected(umbra.messages.reply(conv, id, words.join(' ')), OUTBOX_NOTE);
      out.result(`replied to ${label}`, { sent: true, to: conv, replyTo: id, serverTimestamp: res.serverTimestamp, clientMessageId: res.clientMessageId });
    },
  },
  {
    words: ['react'],
    args: '<account-id|@handle|group-id> <message-id> <emoji|->',
    summary: 'react to a message with an emoji (one per account; - removes yours)',
    async run({ session, out, args }) {
      const [convText, idText, emoji] = args as [string, string, string];
      if (emoji !== '-' && [...emoji].length > 8) throw new CliError('a reaction is one emoji (or - to remove yours)');
      const { s, id, umbra, conv, label } = await annotationTarget(session, convText, idText);
      await s.whileConnected(umbra.messages.react(conv, id, emoji === '-' ? null : emoji), OUTBOX_NOTE);
      out.result(emoji === '-' ? `reaction removed (${label})` : `reacted ${emoji} (${label})`, { reacted: true, to: conv, target: id, emoji: emoji === '-' ? null : emoji });
    },
  },
  {
    words: ['edit'],
    args: '<account-id|@handle|group-id> <message-id> <text...>',
    summary: 'replace the text of one of your messages on every device (shown as edited)',
    async run({ session, out, args }) {
      const [convText, idText, ...words] = args as [string, string, ...string[]];
      const { s, id, umbra, conv, label } = await annotationTarget(session, convText, idText);
      await s.whileConnected(umbra.messages.edit(conv, id, words.join(' ')), OUTBOX_NOTE);
      out.result(`edited (${label})`, { edited: true, to: conv, target: id });
    },
  },
];

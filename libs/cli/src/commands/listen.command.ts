import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { ReceivedMessage } from '@umbra/sdk';
import type { Command } from '../command';
import { formatBytes, formatTime } from '../output';
import { progressBar } from '../progress';
import type { Session } from '../session';
import { describeTimer } from './messaging.command';

/** A file name from a peer, reduced to a safe base name inside the download directory. */
function safeName(dir: string, name: string | undefined, oid: string): string {
  const base = path.basename(name ?? '').replace(/[^A-Za-z0-9._ -]/g, '_').replace(/^\.+/, '').slice(0, 128) || `attachment-${oid.slice(0, 8)}`;
  let candidate = path.join(dir, base);
  for (let i = 1; existsSync(candidate); i++) candidate = path.join(dir, `${i}-${base}`);
  return candidate;
}

/** "@handle" for people, looked up once per account; the account id when there is none. */
function namer(s: Session): (accountId: string) => Promise<string> {
  const names = new Map<string, Promise<string>>();
  return (accountId) => {
    let name = names.get(accountId);
    if (!name) {
      name = s.client.getAccount(accountId).then(
        (a) => (a.handle ? `@${a.handle}` : accountId),
        () => accountId,
      );
      names.set(accountId, name);
    }
    return name;
  };
}

/**
 * What a person reads for a received message, or undefined for control content that is not shown
 * (call signalling, receipts, group state, typing, and any kind this version does not know; the SDK
 * does not hand most of them on as messages, this holds should one come through).
 */
export function describeReceived(m: ReceivedMessage, file: { name?: string; oid: string; size: number } | undefined): string | undefined {
  const c = m.content;
  switch (c.k) {
    case 'text':
      return c.text ?? '';
    case 'att':
      return file ? `sent a file: ${file.name ?? file.oid} (${formatBytes(file.size)})` : 'sent a file that cannot be read (its pointer is malformed)';
    case 'edit':
      return `edited a message: ${c.text ?? ''}`;
    case 'react':
      return typeof c.emoji === 'string' && c.emoji ? `reacted ${c.emoji}` : 'removed a reaction';
    case 'del':
      return 'deleted a message for everyone';
    default:
      return undefined;
  }
}

export const listenCommands: Command[] = [
  {
    words: ['listen'],
    args: '',
    flags: { download: { kind: 'string', value: 'DIR' } },
    summary:
      'print incoming messages until stopped (one JSON object per line with --json); with --download,\nsave received files into DIR (verified before they appear); reconnects by itself when the server\nis away and says so on stderr',
    async run({ session, out, flags, globals }) {
      const s = await session();
      const { formatError } = await import('../errors.js');
      const me = s.identity;
      const umbra = await s.umbra();
      const name = namer(s);
      const downloadDir = typeof flags.get('download') === 'string' ? (flags.get('download') as string) : undefined;
      if (downloadDir) mkdirSync(downloadDir, { recursive: true });
      // One line at a time, in arrival order, even though names are looked up on the way.
      let printing = Promise.resolve();
      const print = (line: () => Promise<string>, data: unknown) => {
        printing = printing.then(async () => out.result(out.json ? '' : await line(), data));
      };
      let downloads = Promise.resolve();
      const show = (m: ReceivedMessage) => {
        const file = umbra.files.pointerOf(m);
        const text = describeReceived(m, file);
        if (text === undefined) return;
        print(
          async () => {
            const who = m.sync ? `me (device ${m.fromDevice})${m.dest ? ` to ${await name(m.dest)}` : ''}` : await name(m.from);
            return `${formatTime(m.content.ts)}  ${who}${m.content.gid ? ` in group ${m.content.gid}` : ''}: ${text}${m.verified ? '' : '  [unverified device]'}`;
          },
          {
            from: m.from,
            device: m.fromDevice,
            text: m.content.text ?? null,
            kind: m.content.k,
            ...(m.content.gid ? { group: m.content.gid } : {}),
            ...(typeof m.content.target === 'string' ? { target: m.content.target } : {}),
            ...(m.content.k === 'react' ? { emoji: m.content.emoji || null } : {}),
            ts: m.content.ts,
            sync: m.sync,
            verified: m.verified,
          },
        );
        if (!file || !downloadDir) return;
        downloads = downloads.then(async () => {
          const dest = safeName(downloadDir, file.name, file.oid);
          const bar = progressBar(`downloading ${path.basename(dest)}`);
          try {
            await umbra.files.download(file, dest, bar ? { onProgress: bar } : {});
            print(async () => `saved ${dest} (${formatBytes(file.size)}) from ${await name(m.from)}`, { saved: dest, from: m.from, size: file.size, type: file.ct });
          } catch (err) {
            out.note(`could not download ${file.name ?? file.oid}: ${formatError(err)}`);
          }
        });
      };
      umbra.on('message', ({ message }) => show(message));
      umbra.on('update', ({ message }) => show(message));
      umbra.on('error', (e) => out.note(`${e.source === 'receive' ? 'could not decrypt a message' : 'could not show a message'}: ${formatError(e.error)}`));
      // §12 monitoring runs on connect and daily: what the log shows that this account did not do.
      umbra.on('kt-alert', ({ alert: a }) => out.note(`KEY TRANSPARENCY ALERT (${a.kind}): ${a.message}${a.leafIndex !== undefined ? ` [leaf ${a.leafIndex}]` : ''}`));
      umbra.on('receipt', (r) => {
        if (r.kind === 'expired-unread') print(async () => `a message vanished before ${r.accountIds.length} account(s) read it`, { expiredUnread: r.clientMessageId, accounts: r.accountIds });
      });
      umbra.on('timer', ({ conv, timer }) => print(async () => `${await name(conv)}: ${describeTimer(timer)}`, { conversation: conv, timer }));
      let revoked = false;
      umbra.on('connection', ({ state, reason }) => {
        if (state !== 'revoked') return;
        revoked = true;
        out.note(`this device was removed from its account (${reason})`);
        process.exitCode = 1;
        process.emit('SIGTERM');
      });
      await s.connect();
      out.note(`listening as ${me.accountIdText} on ${globals.server}; Ctrl-C stops`);
      // The SDK reconnects by itself; say so, so a silent listener is never a mystery.
      let up = true;
      const watch = setInterval(() => {
        if (revoked || s.client.connected === up) return;
        up = s.client.connected;
        out.note(up ? `reconnected to ${globals.server}` : `lost the connection to ${globals.server}; reconnecting…`);
      }, 250);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      clearInterval(watch);
      await downloads;
      await printing;
    },
  },
];

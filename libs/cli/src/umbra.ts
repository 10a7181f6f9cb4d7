#!/usr/bin/env node
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { b64uDecode, canonicalHandle, verifySignedDeviceList } from '@umbra/crypto';
import { EncryptedStore, FileStore, Messenger, UmbraApiError, UmbraClient, linkNewDevice, linkThisDevice } from '@umbra/sdk';
import { downloadFile, pointerOf, sendFile, type FileProgress } from '@umbra/sdk/node';

const USAGE = `umbra — the reference Umbra client

usage: umbra [--home DIR] [--server URL] <command> [args]

  init                          create a new identity (no phone number, no e-mail); prints the account id
  register [--handle NAME]      register it with the server (solves the proof of work), optionally claim a handle
  whoami                        account id, device id, handle
  send <account-id|@handle> <text>
                                send an end-to-end encrypted message to every device of the peer
  send-file <account-id|@handle> <path> [--type MIME] [--expires-in SECONDS]
                                encrypt a file of any size as it streams, upload it (resumable: run the
                                same command again after a crash) and send the pointer end to end; the
                                file vanishes with the message (conversation timer, or --expires-in)
  timer <account-id|@handle> <off|30s|5m|1h|7d> [--read]
                                vanishing messages in this conversation: deleted that long after sending
                                (or, with --read, after the peer's device first shows them), on every
                                device and on the servers; the peer's app adopts the setting
  history <account-id|@handle>  this device's copy of a conversation (vanished messages are gone)
  listen [--download DIR]       print incoming messages as JSON lines until stopped; with --download,
                                save received files into DIR (verified before they appear)
  devices [account-id|@handle]  the verified device list of an account (default: yours)
  safety-number <account-id|@handle>
                                the 60-digit safety number to compare with the peer
  link                          on a NEW device: print a link code and wait to be added to an account
  link <code>                   on a device holding the account key: add the device that shows <code>
  group create <member...>      a new group with you as admin; prints its id
  group add|remove <group-id> <member>
                                change membership (admin only; a new epoch, so senders rekey)
  group send <group-id> <text>  send to the group with sender keys
  group timer <group-id> <off|30s|5m|1h|7d> [--read]
                                vanishing messages in the group (any member may set it)

--home DIR    where this device keeps its state (env UMBRA_HOME, default ~/.umbra)
--server URL  the server's public origin (env UMBRA_SERVER, default http://127.0.0.1:8080)`;

interface Args {
  home: string;
  server: string;
  command: string;
  rest: string[];
  flags: Map<string, string>;
}

function parseArgs(argv: string[]): Args {
  const flags = new Map<string, string>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('--')) {
      const [k, v] = a.includes('=') ? a.slice(2).split('=', 2) : [a.slice(2), argv[i + 1]];
      if (v === undefined || (!a.includes('=') && v.startsWith('--'))) flags.set(k!, 'true');
      else {
        flags.set(k!, v);
        if (!a.includes('=')) i++;
      }
    } else positional.push(a);
  }
  return {
    home: flags.get('home') ?? process.env.UMBRA_HOME ?? path.join(homedir(), '.umbra'),
    server: flags.get('server') ?? process.env.UMBRA_SERVER ?? 'http://127.0.0.1:8080',
    command: positional[0] ?? 'help',
    rest: positional.slice(1),
    flags,
  };
}

/** The device storage key: on a phone it lives in the OS keystore; here in a 0600 file beside the state. */
function storageKey(home: string): Uint8Array {
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const file = path.join(home, 'storage.key');
  if (!existsSync(file)) writeFileSync(file, randomBytes(32).toString('hex'), { mode: 0o600 });
  return Buffer.from(readFileSync(file, 'utf8').trim(), 'hex');
}

async function open(args: Args) {
  const store = new EncryptedStore(new FileStore(path.join(args.home, 'state')), storageKey(args.home));
  const client = await UmbraClient.open({ serverUrl: args.server, store });
  return { client, store };
}

async function resolvePeer(client: UmbraClient, peer: string): Promise<string> {
  if (peer.startsWith('@')) return (await client.getAccountByHandle(canonicalHandle(peer.slice(1)))).accountId;
  return peer;
}

/** A progress bar on stderr when it is a terminal; nothing otherwise (stdout stays JSON lines). */
function progressBar(label: string): ((p: FileProgress) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  let last = -1;
  return ({ done, total }) => {
    const pct = total === 0 ? 100 : Math.floor((done / total) * 100);
    if (pct === last) return;
    last = pct;
    const width = 30;
    const fill = Math.round((pct / 100) * width);
    process.stderr.write(`\r${label} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${pct}%${pct === 100 ? '\n' : ''}`);
  };
}

/** A file name from a peer, reduced to a safe base name inside the download directory. */
function safeName(dir: string, name: string | undefined, oid: string): string {
  const base = path.basename(name ?? '').replace(/[^A-Za-z0-9._ -]/g, '_').replace(/^\.+/, '').slice(0, 128) || `attachment-${oid.slice(0, 8)}`;
  let candidate = path.join(dir, base);
  for (let i = 1; existsSync(candidate); i++) candidate = path.join(dir, `${i}-${base}`);
  return candidate;
}

/** "30s", "5m", "1h", "7d" or a number of seconds; "off" is 0. */
function parseDuration(text: string): number {
  if (text === 'off' || text === '0') return 0;
  const m = /^(\d+)([smhdw]?)$/.exec(text);
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 }[m?.[2] ?? ''];
  const t = m && unit ? Number(m[1]) * unit : NaN;
  if (!Number.isInteger(t) || t < 1 || t > 0xffff_ffff) throw new Error(`not a duration: ${text} (use off, 30s, 5m, 1h, 7d)`);
  return t;
}

function out(v: unknown): void {
  process.stdout.write(`${typeof v === 'string' ? v : JSON.stringify(v)}\n`);
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.command === 'help' || args.flags.has('help')) return out(USAGE);
  const { client, store } = await open(args);
  try {
    switch (args.command) {
      case 'init': {
        const id = await client.createIdentity();
        out(id.accountIdText);
        return;
      }
      case 'register': {
        const res = await client.register();
        await client.refillPrekeys();
        const handle = args.flags.get('handle');
        out({ accountId: res.accountId, deviceId: res.deviceId, ...(handle ? { handle: await client.claimHandle(handle) } : {}) });
        return;
      }
      case 'whoami': {
        const id = client.identity;
        const account = await client.getAccount(id.accountIdText).catch(() => undefined);
        out({ accountId: id.accountIdText, deviceId: id.device.deviceId, handle: account?.handle ?? null, registered: !!account });
        return;
      }
      case 'send': {
        const [peer, ...words] = args.rest;
        if (!peer || words.length === 0) throw new Error('usage: umbra send <account-id|@handle> <text>');
        const messenger = await Messenger.open(client, store);
        await client.connect();
        const res = await messenger.sendText(await resolvePeer(client, peer), words.join(' '));
        out({ sent: true, serverTimestamp: res.serverTimestamp });
        return;
      }
      case 'send-file': {
        const [peer, file] = args.rest;
        if (!peer || !file) throw new Error('usage: umbra send-file <account-id|@handle> <path>');
        const messenger = await Messenger.open(client, store);
        await client.connect();
        const to = await resolvePeer(client, peer);
        const expiresIn = Number(args.flags.get('expires-in') ?? 0);
        mkdirSync(path.join(args.home, 'uploads'), { recursive: true, mode: 0o700 });
        const statePath = path.join(args.home, 'uploads', `${Buffer.from(path.resolve(file)).toString('base64url').slice(-100)}.json`);
        const bar = progressBar(`uploading ${path.basename(file)}`);
        // --expires-in makes this one message vanish; otherwise the conversation's timer applies.
        const { pointer, result: res } = await sendFile(messenger, to, file, {
          statePath,
          ...(args.flags.get('type') ? { contentType: args.flags.get('type')! } : {}),
          ...(expiresIn > 0 ? { timer: { t: expiresIn, m: 'send' as const } } : {}),
          ...(bar ? { onProgress: bar } : {}),
        });
        out({ sent: true, attachment: pointer.oid, size: pointer.size, serverTimestamp: res.serverTimestamp });
        return;
      }
      case 'timer': {
        const [peer, duration] = args.rest;
        if (!peer || !duration) throw new Error('usage: umbra timer <account-id|@handle> <off|30s|5m|1h|7d> [--read]');
        const t = parseDuration(duration);
        const messenger = await Messenger.open(client, store);
        await client.connect();
        const timer = t > 0 ? { t, m: args.flags.has('read') ? ('read' as const) : ('send' as const) } : null;
        await messenger.setTimer(await resolvePeer(client, peer), timer);
        out({ timer });
        return;
      }
      case 'history': {
        if (!args.rest[0]) throw new Error('usage: umbra history <account-id|@handle>');
        const messenger = await Messenger.open(client, store);
        for (const e of await messenger.history.list(await resolvePeer(client, args.rest[0]))) {
          out({ from: e.from, outgoing: e.outgoing, kind: e.content.k, text: e.content.text ?? null, ts: e.content.ts, vanishesAt: e.deleteAt });
        }
        return;
      }
      case 'listen': {
        const messenger = await Messenger.open(client, store);
        const downloadDir = args.flags.get('download');
        if (downloadDir) mkdirSync(downloadDir, { recursive: true });
        let downloads = Promise.resolve();
        messenger.on('message', (m) => {
          out({ from: m.from, device: m.fromDevice, text: m.content.text ?? null, kind: m.content.k, ...(m.content.gid ? { group: m.content.gid } : {}), ts: m.content.ts, sync: m.sync, verified: m.verified });
          const pointer = downloadDir ? pointerOf(m.content) : undefined;
          if (!pointer || !downloadDir) return;
          downloads = downloads.then(async () => {
            const dest = safeName(downloadDir, pointer.name, pointer.oid);
            const bar = progressBar(`downloading ${path.basename(dest)}`);
            try {
              await downloadFile(client, pointer, dest, bar ? { onProgress: bar } : {});
              out({ saved: dest, from: m.from, size: pointer.size, type: pointer.ct });
            } catch (err) {
              process.stderr.write(`could not download ${pointer.name ?? pointer.oid}: ${String(err)}\n`);
            }
          });
        });
        messenger.on('error', (err) => process.stderr.write(`could not decrypt a message: ${String(err)}\n`));
        messenger.on('expiryReceipt', (r) => out({ expiredUnread: r.clientMessageId, accounts: r.accountIds }));
        messenger.on('timer', (conv, timer) => out({ conversation: conv, timer }));
        client.on('revoked', (reason) => {
          process.stderr.write(`this device was revoked (${reason})\n`);
          process.exit(2);
        });
        await client.connect();
        await new Promise<void>((resolve) => {
          process.on('SIGINT', resolve);
          process.on('SIGTERM', resolve);
        });
        return;
      }
      case 'devices': {
        const target = args.rest[0] ? await resolvePeer(client, args.rest[0]) : client.identity.accountIdText;
        const account = await client.getAccount(target);
        const list = verifySignedDeviceList(b64uDecode(account.deviceList));
        out({ accountId: target, listVersion: list.listVersion, devices: list.devices.map((d) => ({ deviceId: d.deviceId, flags: d.flags, createdAt: new Date(d.createdAt).toISOString() })) });
        return;
      }
      case 'safety-number': {
        if (!args.rest[0]) throw new Error('usage: umbra safety-number <account-id|@handle>');
        const target = await resolvePeer(client, args.rest[0]);
        const list = verifySignedDeviceList(b64uDecode((await client.getAccount(target)).deviceList));
        const sn = (await Messenger.open(client, store)).safetyNumber(list.aik);
        out({ peer: target, safetyNumber: sn.groups.join(' '), qr: sn.qr });
        return;
      }
      case 'link': {
        if (args.rest[0]) {
          const messenger = await Messenger.open(client, store);
          out(await linkNewDevice(client, messenger, args.rest[0]));
        } else {
          if (client.hasIdentity) throw new Error('this home already holds an identity; link a new device from an empty --home');
          const id = await linkThisDevice(client, (qr) => out({ linkCode: qr, hint: 'run `umbra link <linkCode>` on a device that holds the account key' }));
          out({ accountId: id.accountIdText, deviceId: id.device.deviceId, linked: true });
        }
        return;
      }
      case 'group': {
        const [sub, ...rest] = args.rest;
        const messenger = await Messenger.open(client, store);
        await client.connect();
        await new Promise((r) => setTimeout(r, 300)); // let queued control messages (group state, keys) arrive
        await client.settle();
        if (sub === 'create') {
          const members = await Promise.all(rest.map((m) => resolvePeer(client, m)));
          out({ group: await messenger.createGroup(members), members });
        } else if ((sub === 'add' || sub === 'remove') && rest[0] && rest[1]) {
          const member = await resolvePeer(client, rest[1]);
          const state = sub === 'add' ? await messenger.addMember(rest[0], member) : await messenger.removeMember(rest[0], member);
          out(state);
        } else if (sub === 'send' && rest[0] && rest.length > 1) {
          const res = await messenger.sendGroupText(rest[0], rest.slice(1).join(' '));
          out({ sent: true, serverTimestamp: res.serverTimestamp });
        } else if (sub === 'timer' && rest[0] && rest[1]) {
          const t = parseDuration(rest[1]);
          const timer = t > 0 ? { t, m: args.flags.has('read') ? ('read' as const) : ('send' as const) } : null;
          await messenger.setGroupTimer(rest[0], timer);
          out({ group: rest[0], timer });
        } else {
          throw new Error('usage: umbra group create <member...> | add|remove <group-id> <member> | send <group-id> <text> | timer <group-id> <off|30s|1h> [--read]');
        }
        await client.settle();
        return;
      }
      default:
        throw new Error(`unknown command "${args.command}"\n\n${USAGE}`);
    }
  } finally {
    await client.close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    const msg = err instanceof UmbraApiError ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err);
    process.stderr.write(`umbra: ${msg}\n`);
    process.exit(1);
  },
);

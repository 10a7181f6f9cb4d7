import type { LinkQr } from '@umbra/crypto';
import { createInterface } from 'node:readline/promises';
import type { LinkOffer } from '@umbra/sdk';
import type { Command } from '../command';
import { CliError } from '../cli-error';

const LINK_PREFIX = 'umbra-link:1:';

/** Loaded when the command runs (usage errors and --help do without it). */
type Crypto = typeof import('@umbra/crypto');

/** A short fingerprint of the new device's key, shown on both devices so the user can compare them. */
function keyFingerprint({ sha256 }: Crypto, qr: LinkQr): string {
  const hex = Buffer.from(sha256(qr.dik).slice(0, 8)).toString('hex');
  return hex.match(/.{4}/g)!.join(' ');
}

function parseCode({ parseLinkQr }: Crypto, code: string): LinkQr {
  if (!code.startsWith(LINK_PREFIX)) throw new CliError(`that is not a link code: run umbra link (with no argument) on the new device and pass the code it prints, which starts with ${LINK_PREFIX}`);
  try {
    return parseLinkQr(code);
  } catch {
    throw new CliError('that link code is damaged (copy all of it, from umbra-link:1: to the end)');
  }
}

export const linkCommands: Command[] = [
  {
    words: ['link'],
    args: '[code]',
    summary:
      'without a code, on a NEW device: print a link code, show the account it is joining, and wait to be\nadded; with the code, on the device that created the account: show the new device and add it',
    async run({ session, out, args, globals }) {
      const s = await session();
      const crypto = await import('@umbra/crypto');
      const { LinkDeclinedError, linkThisDevice } = await import('@umbra/sdk');
      if (args[0]) {
        const qr = parseCode(crypto, args[0]);
        const me = s.identity;
        if (!me.aikSk) throw new CliError('only the device that created the account (it holds the account key) can add devices');
        const umbra = await s.umbra();
        const fingerprint = keyFingerprint(crypto, qr);
        out.note(`adding device ${qr.deviceId} (key ${fingerprint}) to ${me.accountIdText}; the new device shows the same key`);
        const res = await umbra.devices.link(args[0]);
        out.result(`added device ${res.deviceId} (key ${fingerprint}); device list version ${res.listVersion}`, { deviceId: res.deviceId, key: fingerprint, listVersion: res.listVersion });
        return;
      }
      if (s.client.hasIdentity) throw new CliError(`${globals.home} already holds the identity ${s.client.identity.accountIdText}; link a new device from an empty --home`);
      const confirmAccount = async (offer: LinkOffer): Promise<boolean> => {
        out.result(`joining ${offer.accountIdText}`, { joining: offer.accountIdText, accountKey: offer.aikHolder });
        if (!process.stdin.isTTY) return true;
        const rl = createInterface({ input: process.stdin, output: process.stderr });
        try {
          return /^y(es)?$/i.test((await rl.question('is this the account id your other device shows? [y/N] ')).trim());
        } finally {
          rl.close();
        }
      };
      let id;
      try {
        id = await linkThisDevice(s.client, {
          onQr: (code) => {
            const qr = crypto.parseLinkQr(code);
            const key = keyFingerprint(crypto, qr);
            out.result(code, { linkCode: code, deviceId: qr.deviceId, key });
            out.note(`device ${qr.deviceId}, key ${key}: run umbra link <this code> on the device that created the account; waiting…`);
          },
          confirmAccount,
        });
      } catch (err) {
        if (err instanceof LinkDeclinedError) throw new CliError('not linked: the account was not confirmed (nothing was sent or kept)');
        throw err;
      }
      out.result(`linked to ${id.accountIdText} as device ${id.device.deviceId}`, { accountId: id.accountIdText, deviceId: id.device.deviceId, linked: true });
    },
  },
];

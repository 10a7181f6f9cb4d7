import type { Command } from '../command';
import { CliError } from '../cli-error';
import { identityChangeData, warnIdentityChange } from '../identity-change';
import { formatTime } from '../output';

function deviceIdOf(text: string): number {
  const n = /^\d{1,10}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n)) throw new CliError(`not a device id: ${text} (umbra devices lists them)`);
  return n;
}

export const deviceCommands: Command[] = [
  {
    words: ['devices'],
    args: '[account-id|@handle]',
    summary: 'the verified device list of an account (default: yours)',
    async run({ session, out, args }) {
      const s = await session();
      const me = s.identity;
      const peer = args[0] ? await s.resolvePeer(args[0]) : { accountId: me.accountIdText, label: 'you' };
      const account = await s.client.getAccount(peer.accountId);
      const { b64uDecode, verifySignedDeviceList } = await import('@umbra/crypto');
      const list = verifySignedDeviceList(b64uDecode(account.deviceList));
      const devices = list.devices.map((d) => ({ deviceId: d.deviceId, flags: d.flags, createdAt: new Date(d.createdAt).toISOString() }));
      out.result(
        [
          `${peer.accountId} (${peer.label}), device list version ${list.listVersion}:`,
          ...list.devices.map((d) => `  device ${d.deviceId}  added ${formatTime(d.createdAt)}${peer.accountId === me.accountIdText && d.deviceId === me.device.deviceId ? '  (this device)' : ''}`),
        ],
        { accountId: peer.accountId, listVersion: list.listVersion, devices },
      );
    },
  },
  {
    words: ['devices', 'remove'],
    args: '<device-id>',
    summary:
      'remove another device from your account (a lost phone): it is signed out, its sessions end and the\nservers drop its queue; only on the device that created the account',
    async run({ session, out, args }) {
      const deviceId = deviceIdOf(args[0]!);
      const s = await session();
      const me = s.identity;
      if (deviceId === me.device.deviceId) throw new CliError(`device ${deviceId} is this device, which cannot remove itself (remove it from the device that created the account)`);
      if (!me.aikSk) throw new CliError('only the device that created the account (it holds the account key) can remove devices');
      const umbra = await s.umbra();
      const { devices } = await umbra.devices.list();
      if (!devices.some((d) => d.deviceId === deviceId)) {
        throw new CliError(`device ${deviceId} is not in your account's device list (it has ${devices.map((d) => d.deviceId).join(', ')}; umbra devices lists them)`);
      }
      const res = await umbra.devices.remove(deviceId);
      out.result(`removed device ${deviceId}; device list version ${res.listVersion}`, { removed: deviceId, listVersion: res.listVersion, removedDeviceIds: res.removedDeviceIds });
    },
  },
  {
    words: ['safety-number'],
    args: '<account-id|@handle>',
    summary: 'the 60-digit safety number to compare with the peer (same on both sides)',
    async run({ session, out, args }) {
      const s = await session();
      const umbra = await s.umbra();
      const peer = await s.resolvePeer(args[0]!);
      const change = await warnIdentityChange(s, out, peer);
      const sn = await umbra.devices.safetyNumber(peer.accountId);
      const digits = sn.groups.join(' ');
      out.result(
        [`safety number with ${peer.label}:`, sn.groups.slice(0, 6).join(' '), sn.groups.slice(6).join(' ')],
        { peer: peer.accountId, safetyNumber: digits, qr: sn.qr, ...(change ? { identityChange: identityChangeData(change) } : {}) },
      );
      // The user has now seen the new account's number: later commands stop warning (it stays unverified).
      if (change) {
        await s.client.contacts.acknowledge(change.handle);
        out.note(`this is the safety number with the new account; umbra will not warn about @${change.handle} again`);
      }
    },
  },
];

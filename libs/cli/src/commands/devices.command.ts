import { b64uDecode, verifySignedDeviceList } from '@umbra/crypto';
import type { Command } from '../command';
import { formatTime } from '../output';

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
    words: ['safety-number'],
    args: '<account-id|@handle>',
    summary: 'the 60-digit safety number to compare with the peer (same on both sides)',
    async run({ session, out, args }) {
      const s = await session();
      const umbra = await s.umbra();
      const peer = await s.resolvePeer(args[0]!);
      const sn = await umbra.devices.safetyNumber(peer.accountId);
      const digits = sn.groups.join(' ');
      out.result(
        [`safety number with ${peer.label}:`, sn.groups.slice(0, 6).join(' '), sn.groups.slice(6).join(' ')],
        { peer: peer.accountId, safetyNumber: digits, qr: sn.qr },
      );
    },
  },
];

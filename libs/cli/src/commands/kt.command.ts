import type { Command } from '../command';
import { CliError } from '../cli-error';
import { formatTime } from '../output';

export const ktCommands: Command[] = [
  {
    words: ['kt', 'verify'],
    args: '<account-id|@handle>',
    summary:
      "check an account's device list (and, for @handle, its handle binding) against the key-transparency\nlog: pinned log key and witness cosignatures, STH age, consistency with the last tree head this\ndevice saw, inclusion; exit 1 with the reason when any check fails",
    async run({ session, out, args }) {
      const s = await session();
      void s.identity;
      const text = args[0]!;
      const peer = await s.resolvePeer(text);
      // resolvePeer verified the handle binding; this verifies (or re-uses the verified) device list.
      const v = text.startsWith('@') ? await s.client.verifiedAccountByHandle(peer.label.slice(1)) : await s.client.verifiedAccount(peer.accountId);
      const listEvidence = await s.client.kt.evidence(1, v.deviceList.accountId);
      const { b64uDecode, parseLookupResult } = await import('@umbra/crypto');
      const leaf = listEvidence ? parseLookupResult(b64uDecode(listEvidence)) : undefined;
      const sth = await s.client.kt.lastSth();
      const data = {
        accountId: v.account.accountId,
        handle: v.handleClaim ? v.handleClaim.handle : null,
        handleClaimVersion: v.handleClaim?.claimVersion ?? null,
        listVersion: v.deviceList.listVersion,
        devices: v.deviceList.devices.map((d) => d.deviceId),
        leafIndex: leaf?.leafIndex ?? null,
        treeSize: sth?.treeSize ?? null,
        sthTimestamp: sth?.timestamp ?? null,
        verified: true,
        /** The log's signed lookup of the device list (PROTOCOL §12 check 6), base64url. */
        evidence: listEvidence ?? null,
      };
      out.result(
        [
          `${peer.label}${peer.label === v.account.accountId ? '' : ` = ${v.account.accountId}`}: verified in the key-transparency log`,
          `  device list version ${data.listVersion} (devices ${data.devices.join(', ')})${leaf ? `, leaf ${leaf.leafIndex}` : ''}`,
          ...(v.handleClaim ? [`  @${v.handleClaim.handle} bound to this account (claim version ${v.handleClaim.claimVersion})`] : []),
          ...(sth ? [`  tree size ${sth.treeSize}, signed ${formatTime(sth.timestamp)}, consistent with every tree head this device saw`] : []),
        ],
        data,
      );
    },
  },
  {
    words: ['kt', 'monitor'],
    args: '',
    summary:
      "check every key-transparency leaf logged for your account (device lists, your handle) since the last\ncheck; exit 1 and print each alert when the log shows a device list you did not publish or your\nhandle bound to another account (the SDK also does this on connect and daily)",
    async run({ session, out }) {
      const s = await session();
      const me = s.identity;
      if (!me.aikSk) throw new CliError('only a device holding the account key monitors the account (run it on your primary device)');
      const alerts = await s.client.monitorKt();
      const sth = await s.client.kt.lastSth();
      if (alerts.length > 0) process.exitCode = 1;
      out.result(
        alerts.length === 0
          ? [`no alerts: the log shows nothing for ${me.accountIdText} that this device did not publish${sth ? ` (tree size ${sth.treeSize}, signed ${formatTime(sth.timestamp)})` : ''}`]
          : alerts.map((a) => `ALERT ${a.kind}: ${a.message}`),
        { accountId: me.accountIdText, alerts: alerts.map((a) => ({ kind: a.kind, type: a.type, leafIndex: a.leafIndex ?? null, version: a.version ?? null, message: a.message, evidence: a.evidence })), treeSize: sth?.treeSize ?? null },
      );
    },
  },
];

import { encodeAccountId } from '@umbra/crypto';
import type { DeliveredEnvelope } from '@umbra/protocol';
import type { StoredEnvelope } from './envelope-row.mapper';

/** The client's view of a stored envelope. `accountText` caches bech32m encodings within a batch. */
export function toDeliveredEnvelope(e: StoredEnvelope, accountText = new Map<string, string>()): DeliveredEnvelope {
  let sender: string | null = null;
  if (e.sender) {
    const hex = Buffer.from(e.sender.accountId).toString('hex');
    const text = accountText.get(hex) ?? encodeAccountId(e.sender.accountId);
    accountText.set(hex, text);
    sender = text;
  }
  return {
    id: String(e.seq),
    type: e.type,
    clientMessageId: Buffer.from(e.clientMessageId).toString('base64url'),
    senderAccountId: sender,
    senderDeviceId: e.sender ? e.sender.deviceId : null,
    serverTimestamp: e.serverTimestamp,
    expiresAt: e.expiresAt,
    readTtlS: e.readTtlS,
    content: Buffer.from(e.content).toString('base64url'),
  };
}

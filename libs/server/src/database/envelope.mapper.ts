import { encodeAccountId } from '@umbra/crypto';
import type { DeliveredEnvelope } from '@umbra/protocol';
import { buf, type StoredEnvelope } from './envelope-row.mapper';

const ACCOUNT_TEXT_CACHE = 20_000;
const accountTexts = new Map<string, string>();

/**
 * An account id's bech32m text, cached process-wide (the oldest entry goes first): encoding was 6 %
 * of a gateway's CPU while draining queues, every envelope naming its sender.
 */
export function accountIdText(id: Uint8Array): string {
  const hex = buf(id).toString('hex');
  let text = accountTexts.get(hex);
  if (text === undefined) {
    text = encodeAccountId(id);
    if (accountTexts.size >= ACCOUNT_TEXT_CACHE) accountTexts.delete(accountTexts.keys().next().value!);
    accountTexts.set(hex, text);
  }
  return text;
}

/** The client's view of a stored envelope. */
export function toDeliveredEnvelope(e: StoredEnvelope): DeliveredEnvelope {
  const sender = e.sender ? accountIdText(e.sender.accountId) : null;
  return {
    id: String(e.seq),
    type: e.type,
    clientMessageId: buf(e.clientMessageId).toString('base64url'),
    senderAccountId: sender,
    senderDeviceId: e.sender ? e.sender.deviceId : null,
    serverTimestamp: e.serverTimestamp,
    expiresAt: e.expiresAt,
    readTtlS: e.readTtlS,
    content: buf(e.content).toString('base64url'),
  };
}

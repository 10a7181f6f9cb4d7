import type { EnvelopeSealer } from './envelope-sealer';
import type { DeviceAddress } from './types';

/** A message: the (sender device, clientMessageId) its copies share. */
export interface MessageKey {
  sender: DeviceAddress;
  clientMessageId: Uint8Array;
}

export interface StoredEnvelope {
  /** envelope id: a decimal string (bigint), never a JS number */
  seq: string;
  recipient: DeviceAddress;
  sender: DeviceAddress | null;
  clientMessageId: Uint8Array;
  type: number;
  content: Uint8Array;
  serverTimestamp: number;
  expiresAt: number;
  readTtlS: number;
  deleteAt: number;
}

/** An `envelopes` row as ENVELOPE_COLUMNS selects it; `content` is still sealed. */
export interface EnvelopeRow {
  seq: string;
  recipientAccount: Buffer;
  recipientDevice: number;
  senderAccount: Buffer | null;
  senderDevice: number | null;
  clientMessageId: Buffer;
  type: number;
  content: Buffer;
  serverTimestamp: number;
  expiresAt: number;
  readTtlS: number;
  deleteAt: number;
  keyWindow: number;
}

// `seq` here is text: an unqualified ORDER BY seq would sort by it (1, 10, 100, 2…); order by the table's column.
/** Every column of EnvelopeRow but `content` (for RETURNING, where the caller still holds the plaintext). */
export const ENVELOPE_META_COLUMNS = `seq::text AS seq, recipient_account AS "recipientAccount", recipient_device AS "recipientDevice",
  sender_account AS "senderAccount", sender_device AS "senderDevice", client_message_id AS "clientMessageId",
  type, server_timestamp AS "serverTimestamp", expires_at AS "expiresAt", read_ttl_s AS "readTtlS",
  delete_at AS "deleteAt", key_window AS "keyWindow"`;

export const ENVELOPE_COLUMNS = `${ENVELOPE_META_COLUMNS}, content`;

export function toEnvelope(r: EnvelopeRow): StoredEnvelope {
  return {
    seq: r.seq,
    recipient: { accountId: r.recipientAccount, deviceId: r.recipientDevice },
    sender: r.senderAccount && r.senderDevice !== null ? { accountId: r.senderAccount, deviceId: r.senderDevice } : null,
    clientMessageId: r.clientMessageId,
    type: r.type,
    content: r.content,
    serverTimestamp: r.serverTimestamp,
    expiresAt: r.expiresAt,
    readTtlS: r.readTtlS,
    deleteAt: r.deleteAt,
  };
}

/**
 * The rows' envelopes with their contents opened (EnvelopeSealer.openAll). A row that does not open
 * (its window's key is shredded) is left out: as good as deleted.
 */
export async function openRows(sealer: EnvelopeSealer, rows: EnvelopeRow[], now: number, recipientOf: (row: EnvelopeRow) => DeviceAddress): Promise<StoredEnvelope[]> {
  const opened = await sealer.openAll(rows, now, recipientOf);
  const out: StoredEnvelope[] = [];
  rows.forEach((r, i) => {
    const content = opened[i];
    if (content) out.push(toEnvelope({ ...r, content }));
  });
  return out;
}

export const buf = (x: Uint8Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);

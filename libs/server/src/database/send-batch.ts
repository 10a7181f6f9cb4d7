import type { EnvelopeSealer } from './envelope-sealer';
import { buf, type StoredEnvelope } from './envelope-row.mapper';
import type { DeviceAddress } from './types';

export interface StoreRecipient {
  accountId: Uint8Array;
  deviceId: number;
  type: number;
  content: Uint8Array;
}

export interface StoreSend {
  sender: DeviceAddress;
  clientMessageId: Uint8Array;
  expiresAt: number;
  readTtlS: number;
  /** Attachment ids the message references, deleted with it when it vanishes. */
  attachments?: string[];
  recipients: StoreRecipient[];
}

export interface StoreResult {
  serverTimestamp: number;
  duplicate: boolean;
  envelopes: StoredEnvelope[];
  /** Set when the send was refused and nothing of it stored: a recipient device queue was at its cap. */
  refused?: 'QUEUE_FULL';
}

/**
 * A queue whose counter says it is full is recounted from `envelopes` at most this often: counters
 * are upper bounds (deletes do not lower them), and a recount reads every row of the queue.
 */
export const QUEUE_RECOUNT_INTERVAL_MS = 1000;

/** The SQLSTATE the insert trigger raises when a capped store would take a counter past its cap. */
export const QUEUE_CAP_SQLSTATE = 'UQ001';

/** Most envelopes and stored bytes one recipient device's queue may hold. */
export interface QueueCaps {
  envelopes: number;
  bytes: number;
}

/** A send with its contents sealed, ready to insert. */
export interface PreparedSend {
  send: StoreSend;
  key: string;
  del: number;
  /** `queue` is "<recipient account hex>:<device>" */
  copies: { recipient: StoreRecipient; queue: string; body: Buffer; window: number }[];
  counts: Record<string, number>;
}

export const sendKey = (sender: DeviceAddress, cmid: Uint8Array) => `${buf(sender.accountId).toString('hex')}:${sender.deviceId}:${buf(cmid).toString('hex')}`;

export const copyKey = (recipientHex: string, device: number, send: string) => `${send}|${recipientHex}:${device}`;

/** When a stored copy is deleted at the latest: its expiry, capped by the maximum retention. */
export function deadline(expiresAt: number, now: number, retentionMs: number): number {
  return expiresAt > 0 ? Math.min(expiresAt, now + retentionMs) : now + retentionMs;
}

/**
 * A batch's sends, each (sender device, clientMessageId) once, sealed for storage. `firstIndex` is where
 * each send first appears in the batch; `plain` holds each copy's content by copyKey.
 */
export async function prepareSends(sends: StoreSend[], sealer: EnvelopeSealer, now: number, retentionMs: number) {
  const firstIndex = new Map<string, number>();
  sends.forEach((s, i) => {
    const k = sendKey(s.sender, s.clientMessageId);
    if (!firstIndex.has(k)) firstIndex.set(k, i);
  });
  const unique = [...firstIndex.values()].map((i) => sends[i]!);

  const plain = new Map<string, Uint8Array>();
  const prepared: PreparedSend[] = [];
  for (const s of unique) {
    const del = deadline(s.expiresAt, now, retentionMs);
    const counts: Record<string, number> = {};
    const senderHex = buf(s.sender.accountId).toString('hex');
    const sk = sendKey(s.sender, s.clientMessageId);
    const copies: PreparedSend['copies'] = [];
    for (const r of s.recipients) {
      const sealed = await sealer.seal(del, now, r, s.clientMessageId, r.content);
      const rhex = buf(r.accountId).toString('hex');
      copies.push({ recipient: r, queue: `${rhex}:${r.deviceId}`, body: sealed.sealed, window: sealed.window });
      plain.set(copyKey(rhex, r.deviceId, sk), r.content);
      if (rhex !== senderHex) counts[rhex] = (counts[rhex] ?? 0) + 1;
    }
    prepared.push({ send: s, key: sk, del, copies, counts });
  }
  return { firstIndex, unique, prepared, plain };
}

/**
 * The candidates that fit within `caps`, in order, given each queue's current size (`queues`, by
 * PreparedSend's `queue` key); earlier candidates take their place first.
 */
export function fitWithinCaps(candidates: PreparedSend[], queues: Map<string, { envelopes: number; bytes: number }>, caps: QueueCaps): PreparedSend[] {
  const taken = new Map<string, { n: number; b: number }>();
  return candidates.filter((p) => {
    const need = new Map<string, { n: number; b: number }>();
    for (const c of p.copies) {
      const t = need.get(c.queue) ?? { ...(taken.get(c.queue) ?? { n: 0, b: 0 }) };
      t.n += 1;
      t.b += c.body.length;
      need.set(c.queue, t);
    }
    for (const [k, t] of need) {
      const base = queues.get(k)!;
      if (base.envelopes + t.n > caps.envelopes || base.bytes + t.b > caps.bytes) return false;
    }
    for (const [k, t] of need) taken.set(k, t);
    return true;
  });
}

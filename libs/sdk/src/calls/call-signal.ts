import type { Content } from '@umbra/crypto';

/**
 * Call signalling (PROTOCOL.md §10) as it travels inside E2EE Content `k:"call"`, one `op` per
 * message. Field names are the protocol's. Every signal names its call and the sending device's
 * `party_id` (random per device and call), so the caller can tell answers from different devices
 * of one callee apart and pick one.
 */
export type Media = 'audio' | 'video';
export const HANGUP_REASONS = ['hangup', 'timeout', 'answered_elsewhere', 'ice_failed', 'sdp_mismatch', 'glare', 'connection_lost'] as const;
export type HangupReason = (typeof HANGUP_REASONS)[number];

interface Base {
  call_id: string;
  party_id: string;
}
export type CallSignal =
  | (Base & { op: 'offer'; media: Media; sdp: string; E_c: string })
  | (Base & { op: 'answer'; sdp: string; E_r: string; offer_hash: string })
  | (Base & { op: 'ice'; candidates: string[]; end: boolean })
  | (Base & { op: 'select_answer'; selected_party_id: string })
  | (Base & { op: 'hangup'; reason: HangupReason })
  | (Base & { op: 'reject' })
  | (Base & { op: 'busy' });
export type CallOp = CallSignal['op'];

/** A signal that cannot be used, with the reason a client logs (it is ignored, never thrown at the UI). */
export class CallSignalError extends Error {}

const CALL_ID = /^[0-9a-f]{16}$/;
const PARTY_ID = /^[A-Za-z0-9_-]{8,32}$/;
const B64U_KEY = /^[A-Za-z0-9_-]{43}$/;
const MAX_SDP = 64 * 1024;
const MAX_CANDIDATES = 64;
const MAX_CANDIDATE = 1024;

const str = (v: unknown, name: string, max: number): string => {
  if (typeof v !== 'string' || v.length === 0 || v.length > max) throw new CallSignalError(`${name} must be a string of 1–${max} characters`);
  return v;
};

/** The call signal in a Content of kind "call"; CallSignalError says what is wrong with it. */
export function parseCallSignal(content: Content): CallSignal {
  if (content.k !== 'call') throw new CallSignalError(`not a call signal (k=${content.k})`);
  const c = content as Record<string, unknown>;
  const call_id = c.call_id;
  const party_id = c.party_id;
  if (typeof call_id !== 'string' || !CALL_ID.test(call_id)) throw new CallSignalError('call_id must be 16 lower-case hex digits');
  if (typeof party_id !== 'string' || !PARTY_ID.test(party_id)) throw new CallSignalError('party_id must be 8–32 base64url characters');
  const base = { call_id, party_id };
  switch (c.op) {
    case 'offer': {
      if (c.media !== 'audio' && c.media !== 'video') throw new CallSignalError('media must be "audio" or "video"');
      if (typeof c.E_c !== 'string' || !B64U_KEY.test(c.E_c)) throw new CallSignalError('E_c must be a base64url x-only public key');
      return { ...base, op: 'offer', media: c.media, sdp: str(c.sdp, 'sdp', MAX_SDP), E_c: c.E_c };
    }
    case 'answer': {
      if (typeof c.E_r !== 'string' || !B64U_KEY.test(c.E_r)) throw new CallSignalError('E_r must be a base64url x-only public key');
      if (typeof c.offer_hash !== 'string' || !B64U_KEY.test(c.offer_hash)) throw new CallSignalError('offer_hash must be base64url SHA-256');
      return { ...base, op: 'answer', sdp: str(c.sdp, 'sdp', MAX_SDP), E_r: c.E_r, offer_hash: c.offer_hash };
    }
    case 'ice': {
      if (!Array.isArray(c.candidates) || c.candidates.length > MAX_CANDIDATES) throw new CallSignalError(`candidates must be an array of at most ${MAX_CANDIDATES}`);
      const candidates = c.candidates.map((x, i) => str(x, `candidates[${i}]`, MAX_CANDIDATE));
      if (c.end !== undefined && typeof c.end !== 'boolean') throw new CallSignalError('end must be a boolean');
      return { ...base, op: 'ice', candidates, end: c.end === true };
    }
    case 'select_answer': {
      if (typeof c.selected_party_id !== 'string' || !PARTY_ID.test(c.selected_party_id)) throw new CallSignalError('selected_party_id must be a party id');
      return { ...base, op: 'select_answer', selected_party_id: c.selected_party_id };
    }
    case 'hangup': {
      const reason = HANGUP_REASONS.includes(c.reason as HangupReason) ? (c.reason as HangupReason) : 'hangup';
      return { ...base, op: 'hangup', reason };
    }
    case 'reject':
    case 'busy':
      return { ...base, op: c.op };
    default:
      throw new CallSignalError(`unknown call op ${JSON.stringify(c.op)}`);
  }
}

/** The Content fields of a signal (the caller adds v, id, ts). */
export function callSignalFields(signal: CallSignal): Record<string, unknown> & { k: 'call' } {
  return { k: 'call', ...signal };
}

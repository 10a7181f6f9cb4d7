import { b64uDecode, b64uEncode } from '@umbra/crypto';
import type { OutboxEntry } from '../client/outbox.queue';
import type { StoredToken } from '../client/device.session';
import type { IdentityChange, Verification } from '../contacts';
import type { HistoryEntry, Timer } from '../history';
import type { KtIncident, LabelRecord, MonitorMark, StoredSth } from '../kt/kt.client';
import type { KtTrustConfig } from '../kt/kt.verifier';
import type { GroupState, OwnChainRecord, SessionRecord } from '../messaging/messaging.types';
import type { SignedState } from '../prekeys';
import type { UploadState } from '../attachments/attachment-upload';
import type { CallLogEntry } from '../calls/call-log';
import { family, jsonKey, stateKey, textKey, type StateKey } from './state.key';

function bytesKey(name: string): StateKey<Uint8Array> {
  return stateKey(name, (raw) => (raw ? b64uDecode(raw) : undefined), (value) => b64uEncode(value));
}

function numberKey(name: string): StateKey<number> {
  return stateKey(name, Number, String);
}

/** A stored upload that is not of this version or shape reads as absent (the upload starts over). */
function uploadKey(name: string): StateKey<UploadState> {
  return stateKey(
    name,
    (raw) => {
      try {
        const s = JSON.parse(raw) as UploadState;
        return s.v === 1 && typeof s.id === 'string' && typeof s.key === 'string' && typeof s.salt === 'string' && Number.isSafeInteger(s.size) ? s : undefined;
      } catch {
        return undefined;
      }
    },
    (value) => JSON.stringify(value),
  );
}

/** The families: entries listed by prefix. */
export const STATE_FAMILIES = {
  /** `history/<conv>/<Content.id>`: one stored message. */
  history: family('history/', jsonKey<HistoryEntry>),
  group: family('group/', jsonKey<GroupState>),
  /** `outbox/<clientMessageId>`: a send not yet stored by the server. */
  outbox: family('outbox/', jsonKey<OutboxEntry>),
  /** The account a (canonical) handle resolved to, pinned on first use. */
  contactHandle: family('contacts/handle/', textKey),
  contactChange: family('contacts/change/', jsonKey<IdentityChange>),
  contactVerified: family('contacts/verified/', jsonKey<Verification>),
  /** `prekey/<kind>/<keyId>`: a prekey's private half (EC secret key or ML-KEM seed). */
  prekey: (kind: number) => family(`prekey/${kind}/`, bytesKey),
  /** §2 replay cache: one entry (the time it was recorded) per initial message that used no one-time key, grouped by its SPK. */
  replay: (spkId: number) => family(`replay/${spkId}/`, numberKey),
  /** An unfinished resumable upload, by the caller's key. */
  upload: family('attachment-upload/', uploadKey),
  /** `calls/log/<startedAt, 15 digits>/<callId>`: one finished call; the names sort by time. */
  callLog: family('calls/log/', jsonKey<CallLogEntry>),
  /** `calls/signals/<clientMessageId>`: when this account sent a call signal (its expiry receipt is not a vanished message). */
  callSignal: family('calls/signals/', numberKey),
} as const;

/** Every entry of one device's local state, named once. The names are the on-disk layout: never rename one. */
export const STATE_KEYS = {
  /** This device's keys (serializeIdentity): present once the device exists. */
  identity: textKey('identity'),
  /** The bearer token and its expiry. */
  token: jsonKey<StoredToken>('token'),
  /** "sender:device:clientMessageId" of the last envelopes handled, so one delivered twice is handled once. */
  seenEnvelopes: jsonKey<string[]>('seen'),
  /** "from:Content.id" of the last messages shown, so a message delivered twice is shown once. */
  seenContent: jsonKey<string[]>('seen-content'),
  /** Set once registration (or linking) finished; `connect()` finishes a device without it first. */
  ready: textKey('umbra/ready'),
  /** Read receipts are a setting of this device, on unless stored off. */
  readReceipts: stateKey<boolean>('settings/read-receipts', (raw) => raw !== 'off', (on) => (on ? 'on' : 'off')),

  history: (conv: string, id: string) => STATE_FAMILIES.history.key(`${conv}/${id}`),
  timer: (conv: string) => jsonKey<Timer>(`timer/${conv}`),
  outbox: (clientMessageId: string) => STATE_FAMILIES.outbox.key(clientMessageId),

  /** The ratchet sessions with one peer device. */
  session: (peerHex: string, device: number) => jsonKey<SessionRecord>(`session/${peerHex}/${device}`),
  /** The last verified signed device list of an account (base64url), for rollback checks. */
  deviceList: (accountHex: string) => textKey(`list/${accountHex}`),
  group: (gid: string) => STATE_FAMILIES.group.key(gid),
  ownChain: (gid: string) => jsonKey<OwnChainRecord>(`skchain/own/${gid}`),
  /** A member device's sender-key chain (serialized), one per group, epoch and chain. */
  inChain: (senderHex: string, device: number, gid: string, epoch: number, chainId: number) => textKey(`skchain/in/${senderHex}/${device}/${gid}/${epoch}/${chainId}`),

  contactHandle: (handle: string) => STATE_FAMILIES.contactHandle.key(handle),
  contactChange: (handle: string) => STATE_FAMILIES.contactChange.key(handle),
  contactVerified: (accountId: string) => STATE_FAMILIES.contactVerified.key(accountId),

  prekey: (kind: number, keyId: number) => STATE_FAMILIES.prekey(kind).key(String(keyId)),
  prekeyNextId: numberKey('prekey/next-id'),
  /** The current signed prekey and last-resort KEM key, and the replaced ones still kept. */
  prekeySigned: jsonKey<SignedState>('prekey/signed'),
  /** `ekHash`: b64u SHA-256 of the initial message's EK_A. */
  replay: (spkId: number, ekHash: string) => STATE_FAMILIES.replay(spkId).key(ekHash),

  /** The handle this device claimed for its account (the client also monitors it in the KT log). */
  ownHandle: textKey('kt/own-handle'),
  /** The key-transparency config pinned on first use. */
  ktTrust: jsonKey<KtTrustConfig>('kt/trust'),
  /** The last tree head this device verified. */
  ktSth: jsonKey<StoredSth>('kt/sth'),
  ktLabel: (type: number, labelHex: string) => jsonKey<LabelRecord>(`kt/label/${type}/${labelHex}`),
  /** The kept signed lookup of a label (base64url). */
  ktEvidence: (type: number, labelHex: string) => textKey(`kt/evidence/${type}/${labelHex}`),
  ktMonitor: (type: number, labelHex: string) => jsonKey<MonitorMark>(`kt/monitor/${type}/${labelHex}`),
  /** Hex SHA-256 of a device list this device published, by version. */
  ktPublished: (version: number) => textKey(`kt/published/${version}`),
  ktIncidents: jsonKey<KtIncident[]>('kt/incidents'),

  upload: (key: string) => STATE_FAMILIES.upload.key(key),
} as const;

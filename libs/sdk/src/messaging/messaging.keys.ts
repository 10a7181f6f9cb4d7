import type { Timer } from '../history';
import type { KeyValueStore } from '../store';
import type { GroupState, OwnChainRecord, SessionRecord } from './messaging.types';

/** One entry of the Messenger's state: where it lives in the KeyValueStore and how its value is encoded. */
export interface StoredKey<T> {
  readonly name: string;
  parse(raw: string): T;
  format(value: T): string;
}

function json<T>(name: string): StoredKey<T> {
  return { name, parse: (raw) => JSON.parse(raw) as T, format: (value) => JSON.stringify(value) };
}

function text(name: string): StoredKey<string> {
  return { name, parse: (raw) => raw, format: (value) => value };
}

/** Every key the Messenger reads and writes (the history's own keys are History's). */
export const MESSAGING_KEYS = {
  /** The ratchet sessions with one peer device. */
  session: (peerHex: string, device: number) => json<SessionRecord>(`session/${peerHex}/${device}`),
  /** The last verified signed device list of an account (base64url), for rollback checks. */
  deviceList: (accountHex: string) => text(`list/${accountHex}`),
  /** "from:Content.id" of the last messages shown, so a message delivered twice is shown once. */
  seen: json<string[]>('seen-content'),
  group: (gid: string) => json<GroupState>(`group/${gid}`),
  ownChain: (gid: string) => json<OwnChainRecord>(`skchain/own/${gid}`),
  /** A member device's sender-key chain (serialized), one per group, epoch and chain. */
  inChain: (senderHex: string, device: number, gid: string, epoch: number, chainId: number) => text(`skchain/in/${senderHex}/${device}/${gid}/${epoch}/${chainId}`),
  timer: (conv: string) => json<Timer>(`timer/${conv}`),
} as const;

export async function loadKey<T>(kv: KeyValueStore, key: StoredKey<T>): Promise<T | undefined> {
  const raw = await kv.get(key.name);
  return raw ? key.parse(raw) : undefined;
}

export function saveKey<T>(kv: KeyValueStore, key: StoredKey<T>, value: T): Promise<void> {
  return kv.set(key.name, key.format(value));
}

export function deleteKey(kv: KeyValueStore, key: StoredKey<unknown>): Promise<void> {
  return kv.delete(key.name);
}

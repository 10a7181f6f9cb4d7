import type { Timer } from '../history';
import type { GroupState } from '../messenger';
import type { KeyValueStore } from '../store';

/** One entry of the SDK's local state: where it lives in the KeyValueStore and how its value is encoded. */
export interface StateKey<T> {
  readonly name: string;
  parse(raw: string): T;
  format(value: T): string;
}

function json<T>(name: string): StateKey<T> {
  return { name, parse: (raw) => JSON.parse(raw) as T, format: (value) => JSON.stringify(value) };
}

function text(name: string): StateKey<string> {
  return { name, parse: (raw) => raw, format: (value) => value };
}

/**
 * The entries the front door reads and writes, named once. The layout is the one the Messenger,
 * History and UmbraClient use, so both views of a store agree.
 */
export const STATE_KEYS = {
  /** This device's keys (UmbraClient's serialized LocalIdentity): present once the device exists. */
  identity: text('identity'),
  /** Set once registration (or linking) finished; `connect()` finishes a device without it first. */
  ready: text('umbra/ready'),
  /** The handle this device claimed for its account (the client also monitors it in the KT log). */
  ownHandle: text('kt/own-handle'),
  group: (gid: string) => json<GroupState>(`group/${gid}`),
  timer: (conv: string) => json<Timer>(`timer/${conv}`),
} as const;

const PREFIX = { group: 'group/', history: 'history/' } as const;

/** Typed access to one device's local state. */
export class LocalState {
  constructor(private readonly store: KeyValueStore) {}

  async get<T>(key: StateKey<T>): Promise<T | undefined> {
    const raw = await this.store.get(key.name);
    return raw === undefined ? undefined : key.parse(raw);
  }

  set<T>(key: StateKey<T>, value: T): Promise<void> {
    return this.store.set(key.name, key.format(value));
  }

  delete(key: StateKey<unknown>): Promise<void> {
    return this.store.delete(key.name);
  }

  /** Every group this device is a member of. */
  async groups(): Promise<GroupState[]> {
    const out: GroupState[] = [];
    for (const name of await this.store.keys(PREFIX.group)) {
      const group = await this.get(STATE_KEYS.group(name.slice(PREFIX.group.length)));
      if (group) out.push(group);
    }
    return out;
  }

  /** Every conversation (peer account or group id) with at least one message in this device's history. */
  async conversations(): Promise<string[]> {
    const convs = new Set<string>();
    for (const name of await this.store.keys(PREFIX.history)) {
      const conv = name.slice(PREFIX.history.length).split('/')[0];
      if (conv) convs.add(conv);
    }
    return [...convs];
  }

  /** Deletes every entry of the store (keys, sessions, history, outbox) in one batch; returns how many. */
  async wipe(): Promise<number> {
    const names = await this.store.keys('');
    if (names.length > 0) await this.store.batch(names.map((name) => [name, undefined] as const));
    return names.length;
  }
}

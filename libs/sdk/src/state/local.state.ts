import type { GroupState } from '../messaging/messaging.types';
import type { KeyValueStore, StoreWrite } from '../store';
import type { StateFamily, StateKey } from './state.key';
import { STATE_FAMILIES } from './state.keys';

/** One entry of a family, as listed. */
export interface StateEntry<T> {
  suffix: string;
  key: StateKey<T>;
  value: T;
}

/** One write of a batch: `undefined` deletes the entry. */
export function stateWrite<T>(key: StateKey<T>, value: T | undefined): StoreWrite {
  return [key.name, value === undefined ? undefined : key.format(value)];
}

/**
 * Typed access to one device's local state (or to a batch over it: pass the StoreTransaction).
 * Every name comes from STATE_KEYS / STATE_FAMILIES.
 */
export class LocalState {
  constructor(private readonly store: KeyValueStore) {}

  async get<T>(key: StateKey<T>): Promise<T | undefined> {
    const raw = await this.store.get(key.name);
    return raw === undefined ? undefined : key.parse(raw);
  }

  async has(key: StateKey<unknown>): Promise<boolean> {
    return (await this.store.get(key.name)) !== undefined;
  }

  set<T>(key: StateKey<T>, value: T): Promise<void> {
    return this.store.set(key.name, key.format(value));
  }

  delete(key: StateKey<unknown>): Promise<void> {
    return this.store.delete(key.name);
  }

  /** Applies every write or none (KeyValueStore.batch); build them with `stateWrite`. */
  batch(writes: readonly StoreWrite[]): Promise<void> {
    return this.store.batch(writes);
  }

  /** The suffixes (starting with `under`) of a family's entries, no values read, in no particular order. */
  async suffixes(fam: StateFamily<unknown>, under = ''): Promise<string[]> {
    return (await this.store.keys(fam.prefix + under)).map((name) => name.slice(fam.prefix.length));
  }

  /** A family's entries with their values; entries that vanished or do not parse are left out. */
  async entries<T>(fam: StateFamily<T>, under = ''): Promise<StateEntry<T>[]> {
    const out: StateEntry<T>[] = [];
    for (const suffix of await this.suffixes(fam, under)) {
      const key = fam.key(suffix);
      const value = await this.get(key);
      if (value !== undefined) out.push({ suffix, key, value });
    }
    return out;
  }

  /** Every group this device is a member of. */
  async groups(): Promise<GroupState[]> {
    return (await this.entries(STATE_FAMILIES.group)).map((e) => e.value);
  }

  /** Every conversation (peer account or group id) with at least one message in this device's history. */
  async conversations(): Promise<string[]> {
    const convs = new Set<string>();
    for (const suffix of await this.suffixes(STATE_FAMILIES.history)) {
      const conv = suffix.split('/')[0];
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

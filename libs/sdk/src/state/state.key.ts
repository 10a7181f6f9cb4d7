/**
 * One entry of the SDK's local state: where it lives in the KeyValueStore and how its value is
 * encoded. `parse` answers undefined for a value it does not accept; it then reads as absent.
 */
export interface StateKey<T> {
  readonly name: string;
  parse(raw: string): T | undefined;
  format(value: T): string;
}

/** Entries sharing a name prefix (one per message, contact, prekey…), listed by their suffix. */
export interface StateFamily<T> {
  readonly prefix: string;
  key(suffix: string): StateKey<T>;
}

export function stateKey<T>(name: string, parse: (raw: string) => T | undefined, format: (value: T) => string): StateKey<T> {
  return { name, parse, format };
}

export function jsonKey<T>(name: string): StateKey<T> {
  return stateKey<T>(name, (raw) => JSON.parse(raw) as T, (value) => JSON.stringify(value));
}

export function textKey(name: string): StateKey<string> {
  return stateKey<string>(name, (raw) => raw, (value) => value);
}

export function family<T>(prefix: string, make: (name: string) => StateKey<T>): StateFamily<T> {
  return { prefix, key: (suffix) => make(prefix + suffix) };
}

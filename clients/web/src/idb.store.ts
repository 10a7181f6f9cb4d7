import type { KeyValueStore, StoreWrite } from '@umbra/sdk';

const DB_VERSION = 1;
const VALUES = 'values';
const META = 'meta';
const STORAGE_KEY = 'storage-key';

interface Sealed {
  iv: Uint8Array<ArrayBuffer>;
  data: ArrayBuffer;
}

/** Why the page cannot read its stored state. */
export type StoredStateProblem = 'unopenable' | 'key-missing' | 'damaged';

/**
 * The page cannot read its stored state: the database does not open, the key it is encrypted under
 * is gone, or a record is not one this page wrote (altered, truncated, or sealed under another key).
 * Nothing is changed or deleted when this is thrown.
 */
export class StoredStateError extends Error {
  constructor(
    readonly problem: StoredStateProblem,
    message: string,
  ) {
    super(message);
  }
}

function isSealed(value: unknown): value is Sealed {
  const v = value as Partial<Sealed> | null;
  return typeof v === 'object' && v !== null && v.iv instanceof Uint8Array && v.iv.length === 12 && v.data instanceof ArrayBuffer;
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('IndexedDB request failed'));
  });
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error ?? new Error('IndexedDB transaction failed'));
    tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
  });
}

/**
 * The SDK's key-value store in IndexedDB, every value encrypted at rest (AES-256-GCM, the key name
 * as associated data) under a WebCrypto key that is generated in this browser as non-extractable:
 * script can use it but never read it out, and it is kept in the same database. A batch is one
 * IndexedDB transaction, so it is applied whole or not at all.
 */
export class IdbStore implements KeyValueStore {
  private constructor(
    private readonly db: IDBDatabase,
    private readonly key: CryptoKey,
    readonly name: string,
  ) {}

  static async open(name: string): Promise<IdbStore> {
    const open = indexedDB.open(name, DB_VERSION);
    open.onupgradeneeded = () => {
      open.result.createObjectStore(VALUES);
      open.result.createObjectStore(META);
    };
    let db: IDBDatabase;
    try {
      db = await request(open);
    } catch (err) {
      throw new StoredStateError('unopenable', `this browser's stored state cannot be opened (${err instanceof Error ? err.message : String(err)})`);
    }
    // Another tab (or this page) wiping the device: let it, this connection is finished.
    db.onversionchange = () => db.close();
    let key = await request(db.transaction(META).objectStore(META).get(STORAGE_KEY) as IDBRequest<CryptoKey | undefined>);
    if (!(key instanceof CryptoKey) && (await request(db.transaction(VALUES).objectStore(VALUES).count())) > 0) {
      db.close();
      throw new StoredStateError('key-missing', "the key this browser's stored state is encrypted under is missing, so it cannot be decrypted");
    }
    if (!(key instanceof CryptoKey)) {
      key = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
      const tx = db.transaction(META, 'readwrite');
      tx.objectStore(META).put(key, STORAGE_KEY);
      await done(tx);
    }
    return new IdbStore(db, key, name);
  }

  /** Whether a database of this name exists (without creating one). */
  static async exists(name: string): Promise<boolean> {
    return (await indexedDB.databases()).some((d) => d.name === name);
  }

  /** Deletes everything this browser stored for Umbra under `name`, the storage key included. */
  static wipe(name: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const req = indexedDB.deleteDatabase(name);
      req.onsuccess = () => resolve();
      req.onerror = () => reject(req.error ?? new Error('could not delete the stored state'));
      req.onblocked = () => reject(new Error('another tab holds this device open; close it first'));
    });
  }

  async get(key: string): Promise<string | undefined> {
    const sealed = await request(this.db.transaction(VALUES).objectStore(VALUES).get(key) as IDBRequest<Sealed | undefined>);
    if (sealed === undefined) return undefined;
    if (!isSealed(sealed)) throw new StoredStateError('damaged', `this browser's stored state is damaged (${key} is not a record this page wrote)`);
    try {
      const plain = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: sealed.iv, additionalData: new TextEncoder().encode(key) }, this.key, sealed.data);
      return new TextDecoder().decode(plain);
    } catch {
      throw new StoredStateError('damaged', `this browser's stored state is damaged (${key} cannot be decrypted: altered, or sealed under another key)`);
    }
  }

  set(key: string, value: string): Promise<void> {
    return this.batch([[key, value]]);
  }

  delete(key: string): Promise<void> {
    return this.batch([[key, undefined]]);
  }

  async keys(prefix: string): Promise<string[]> {
    const range = IDBKeyRange.bound(prefix, `${prefix}\uffff`);
    const keys = await request(this.db.transaction(VALUES).objectStore(VALUES).getAllKeys(range));
    return keys.map(String);
  }

  async batch(writes: readonly StoreWrite[]): Promise<void> {
    // Encrypt first: an IndexedDB transaction commits as soon as it waits on anything else.
    const sealed = await Promise.all(writes.map(async ([k, v]) => [k, v === undefined ? undefined : await this.seal(k, v)] as const));
    const tx = this.db.transaction(VALUES, 'readwrite');
    const values = tx.objectStore(VALUES);
    for (const [k, v] of sealed) {
      if (v === undefined) values.delete(k);
      else values.put(v, k);
    }
    await done(tx);
  }

  close(): void {
    this.db.close();
  }

  private async seal(key: string, value: string): Promise<Sealed> {
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const data = await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: new TextEncoder().encode(key) }, this.key, new TextEncoder().encode(value));
    return { iv, data };
  }
}

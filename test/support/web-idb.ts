import type { Page } from 'playwright-core';

/** The web client's IndexedDB database and its object stores (clients/web/src/idb.store.ts). */
const DB = 'umbra-device';
/** Where a test keeps the storage key it took away, in the same origin. */
const ASIDE = 'umbra-test-aside';

/** One sealed record as stored: its IV and ciphertext bytes. */
export interface StoredRecord {
  iv: number[];
  data: number[];
}

/** What the page's database holds: the number of records, each record's ciphertext, and whether the storage key is there. */
export function storedValues(page: Page): Promise<{ count: number; hasKey: boolean; records: Record<string, number[]> }> {
  return page.evaluate(
    (db) =>
      new Promise((resolve, reject) => {
        const open = indexedDB.open(db);
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const tx = open.result.transaction(['values', 'meta']);
          const values = tx.objectStore('values');
          const records: Record<string, number[]> = {};
          const cursor = values.openCursor();
          cursor.onsuccess = () => {
            const c = cursor.result;
            if (!c) return;
            const v = c.value as { data?: unknown };
            records[String(c.key)] = v.data instanceof ArrayBuffer ? [...new Uint8Array(v.data)] : [];
            c.continue();
          };
          const key = tx.objectStore('meta').get('storage-key');
          tx.oncomplete = () => {
            open.result.close();
            resolve({ count: Object.keys(records).length, hasKey: key.result instanceof CryptoKey, records });
          };
          tx.onerror = () => reject(tx.error);
        };
      }),
    DB,
  );
}

/** Flips one byte of a stored record's ciphertext; resolves with the record as it was. */
export function corruptRecord(page: Page, key: string): Promise<StoredRecord> {
  return page.evaluate(
    ({ db, key }) =>
      new Promise<StoredRecord>((resolve, reject) => {
        const open = indexedDB.open(db);
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const tx = open.result.transaction('values', 'readwrite');
          const store = tx.objectStore('values');
          let original: StoredRecord | undefined;
          const get = store.get(key);
          get.onsuccess = () => {
            const v = get.result as { iv: Uint8Array; data: ArrayBuffer } | undefined;
            if (!v) return tx.abort();
            original = { iv: [...v.iv], data: [...new Uint8Array(v.data)] };
            const bytes = new Uint8Array(v.data.slice(0));
            bytes[Math.floor(bytes.length / 2)]! ^= 0x20;
            store.put({ iv: v.iv, data: bytes.buffer }, key);
          };
          tx.oncomplete = () => {
            open.result.close();
            resolve(original!);
          };
          tx.onabort = () => reject(new Error(`no record ${key}`));
        };
      }),
    { db: DB, key },
  );
}

/** Stores `value` (not a sealed record) under `key`, as something else writing to the database might. */
export function replaceRecord(page: Page, key: string, value: string): Promise<void> {
  return page.evaluate(
    ({ db, key, value }) =>
      new Promise<void>((resolve, reject) => {
        const open = indexedDB.open(db);
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const tx = open.result.transaction('values', 'readwrite');
          tx.objectStore('values').put(value, key);
          tx.oncomplete = () => {
            open.result.close();
            resolve();
          };
          tx.onerror = () => reject(tx.error);
        };
      }),
    { db: DB, key, value },
  );
}

/** Puts a record back as `corruptRecord` found it. */
export function restoreRecord(page: Page, key: string, record: StoredRecord): Promise<void> {
  return page.evaluate(
    ({ db, key, record }) =>
      new Promise<void>((resolve, reject) => {
        const open = indexedDB.open(db);
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const tx = open.result.transaction('values', 'readwrite');
          tx.objectStore('values').put({ iv: new Uint8Array(record.iv), data: new Uint8Array(record.data).buffer }, key);
          tx.oncomplete = () => {
            open.result.close();
            resolve();
          };
          tx.onerror = () => reject(tx.error);
        };
      }),
    { db: DB, key, record },
  );
}

/** Moves the storage key out of the page's database (into another database of the origin). */
export async function hideStorageKey(page: Page): Promise<void> {
  await page.evaluate(
    ({ db, aside }) =>
      new Promise<void>((resolve, reject) => {
        const open = indexedDB.open(db);
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const tx = open.result.transaction('meta', 'readwrite');
          const get = tx.objectStore('meta').get('storage-key');
          get.onsuccess = () => {
            const key = get.result as CryptoKey;
            tx.objectStore('meta').delete('storage-key');
            tx.oncomplete = () => {
              open.result.close();
              const side = indexedDB.open(aside, 1);
              side.onupgradeneeded = () => side.result.createObjectStore('keys');
              side.onerror = () => reject(side.error);
              side.onsuccess = () => {
                const t = side.result.transaction('keys', 'readwrite');
                t.objectStore('keys').put(key, 'storage-key');
                t.oncomplete = () => {
                  side.result.close();
                  resolve();
                };
                t.onerror = () => reject(t.error);
              };
            };
          };
          tx.onerror = () => reject(tx.error);
        };
      }),
    { db: DB, aside: ASIDE },
  );
}

/** Puts back the storage key `hideStorageKey` moved away. */
export async function restoreStorageKey(page: Page): Promise<void> {
  await page.evaluate(
    ({ db, aside }) =>
      new Promise<void>((resolve, reject) => {
        const side = indexedDB.open(aside, 1);
        side.onerror = () => reject(side.error);
        side.onsuccess = () => {
          const get = side.result.transaction('keys').objectStore('keys').get('storage-key');
          get.onerror = () => reject(get.error);
          get.onsuccess = () => {
            const key = get.result as CryptoKey;
            side.result.close();
            const open = indexedDB.open(db);
            open.onerror = () => reject(open.error);
            open.onsuccess = () => {
              const tx = open.result.transaction('meta', 'readwrite');
              tx.objectStore('meta').put(key, 'storage-key');
              tx.oncomplete = () => {
                open.result.close();
                resolve();
              };
              tx.onerror = () => reject(tx.error);
            };
          };
        };
      }),
    { db: DB, aside: ASIDE },
  );
}

/** Opens the page's database at a version the page does not know (as a newer release would leave it). */
export async function upgradeDatabase(page: Page): Promise<void> {
  await page.evaluate(
    (db) =>
      new Promise<void>((resolve, reject) => {
        const open = indexedDB.open(db, 1000);
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          open.result.close();
          resolve();
        };
      }),
    DB,
  );
}

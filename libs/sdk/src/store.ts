import { aesGcmDecrypt, aesGcmEncrypt, b64uDecode, b64uEncode, concatBytes, randomBytes } from '@umbra/crypto';
import { Mutex } from './mutex';

/** One write of a batch: a value to set, or `undefined` to delete the key. */
export type StoreWrite = readonly [key: string, value: string | undefined];

/** Where the SDK keeps its state: identity, token, outbox, de-duplication marks. */
export interface KeyValueStore {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string): Promise<void>;
  delete(key: string): Promise<void>;
  /** Keys starting with `prefix`, in no particular order. */
  keys(prefix: string): Promise<string[]>;
  /**
   * Applies every write or none, durably, before resolving. A received message's result, its
   * session state and its de-duplication record go in one batch, so the envelope is acked only
   * once all three are stored.
   */
  batch(writes: readonly StoreWrite[]): Promise<void>;
}

/**
 * Collects one unit of work's writes over a store: reads see the pending writes, nothing reaches
 * the store until `commit()` hands them to `batch()` at once.
 */
export class StoreTransaction implements KeyValueStore {
  private readonly pending = new Map<string, string | undefined>();

  constructor(private readonly inner: KeyValueStore) {}

  async get(key: string): Promise<string | undefined> {
    return this.pending.has(key) ? this.pending.get(key) : this.inner.get(key);
  }
  async set(key: string, value: string): Promise<void> {
    this.pending.set(key, value);
  }
  async delete(key: string): Promise<void> {
    this.pending.set(key, undefined);
  }
  async keys(prefix: string): Promise<string[]> {
    const out = new Set(await this.inner.keys(prefix));
    for (const [k, v] of this.pending) if (k.startsWith(prefix)) v === undefined ? out.delete(k) : out.add(k);
    return [...out];
  }
  async batch(writes: readonly StoreWrite[]): Promise<void> {
    for (const [k, v] of writes) this.pending.set(k, v);
  }
  commit(): Promise<void> {
    const writes = [...this.pending];
    this.pending.clear();
    return writes.length === 0 ? Promise.resolve() : this.inner.batch(writes);
  }
}

export class MemoryStore implements KeyValueStore {
  private readonly map = new Map<string, string>();

  async get(key: string): Promise<string | undefined> {
    return this.map.get(key);
  }
  async set(key: string, value: string): Promise<void> {
    this.map.set(key, value);
  }
  async delete(key: string): Promise<void> {
    this.map.delete(key);
  }
  async keys(prefix: string): Promise<string[]> {
    return [...this.map.keys()].filter((k) => k.startsWith(prefix));
  }
  async batch(writes: readonly StoreWrite[]): Promise<void> {
    for (const [k, v] of writes) v === undefined ? this.map.delete(k) : this.map.set(k, v);
  }
}

const JOURNAL = '.batch.journal';

/**
 * One file per key under a directory, written atomically (temp file + rename). A batch is first
 * written as one journal file (atomic by rename), then applied, then the journal is removed; a
 * journal left by a crash is applied again before the next read. Node only: it loads node:fs
 * lazily so the SDK core stays browser-safe.
 */
export class FileStore implements KeyValueStore {
  private recovered: Promise<void> | undefined;
  /** One journal at a time. */
  private readonly journalLock = new Mutex();

  constructor(private readonly dir: string) {}

  private async fs() {
    const fs = await import('node:fs/promises');
    this.recovered ??= this.replayJournal(fs);
    await this.recovered;
    return fs;
  }

  private async replayJournal(fs: typeof import('node:fs/promises')): Promise<void> {
    let raw: string;
    try {
      raw = await fs.readFile(`${this.dir}/${JOURNAL}`, 'utf8');
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') return;
      throw err;
    }
    await this.apply(fs, JSON.parse(raw) as [string, string | null][]);
  }

  private async apply(fs: typeof import('node:fs/promises'), writes: [string, string | null][]): Promise<void> {
    for (const [k, v] of writes) {
      if (v === null) await fs.rm(this.file(k), { force: true });
      else await this.writeAtomic(fs, this.file(k), v);
    }
    await fs.rm(`${this.dir}/${JOURNAL}`, { force: true });
  }

  private async writeAtomic(fs: typeof import('node:fs/promises'), path: string, value: string): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    const tmp = `${path}.${Math.random().toString(36).slice(2)}.tmp`;
    const fh = await fs.open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(value);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, path);
  }

  async batch(writes: readonly StoreWrite[]): Promise<void> {
    const fs = await this.fs();
    const journal = writes.map(([k, v]): [string, string | null] => [k, v ?? null]);
    await this.journalLock.run(async () => {
      await this.writeAtomic(fs, `${this.dir}/${JOURNAL}`, JSON.stringify(journal));
      await this.apply(fs, journal);
    });
  }

  private file(key: string): string {
    return `${this.dir}/${encodeURIComponent(key)}`;
  }

  async get(key: string): Promise<string | undefined> {
    const fs = await this.fs();
    try {
      return await fs.readFile(this.file(key), 'utf8');
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async set(key: string, value: string): Promise<void> {
    await this.writeAtomic(await this.fs(), this.file(key), value);
  }

  async delete(key: string): Promise<void> {
    const fs = await this.fs();
    await fs.rm(this.file(key), { force: true });
  }

  async keys(prefix: string): Promise<string[]> {
    const fs = await this.fs();
    try {
      return (await fs.readdir(this.dir))
        .filter((f) => !f.endsWith('.tmp') && f !== JOURNAL)
        .map((f) => decodeURIComponent(f))
        .filter((k) => k.startsWith(prefix));
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') return [];
      throw err;
    }
  }
}

/**
 * Encrypts every value at rest with AES-256-GCM under a 32-byte device storage key (random nonce,
 * the key name as associated data, so values cannot be swapped between keys). Names stay clear.
 */
export class EncryptedStore implements KeyValueStore {
  constructor(
    private readonly inner: KeyValueStore,
    private readonly storageKey: Uint8Array,
  ) {
    if (storageKey.length !== 32) throw new Error('storage key must be 32 bytes');
  }

  async get(key: string): Promise<string | undefined> {
    const sealed = await this.inner.get(key);
    if (sealed === undefined) return undefined;
    const bytes = b64uDecode(sealed);
    return new TextDecoder().decode(aesGcmDecrypt(this.storageKey, bytes.slice(0, 12), new TextEncoder().encode(key), bytes.slice(12)));
  }

  async set(key: string, value: string): Promise<void> {
    await this.inner.set(key, this.seal(key, value));
  }

  batch(writes: readonly StoreWrite[]): Promise<void> {
    return this.inner.batch(writes.map(([k, v]): StoreWrite => [k, v === undefined ? undefined : this.seal(k, v)]));
  }

  private seal(key: string, value: string): string {
    const nonce = randomBytes(12);
    return b64uEncode(concatBytes(nonce, aesGcmEncrypt(this.storageKey, nonce, new TextEncoder().encode(key), new TextEncoder().encode(value))));
  }

  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }

  keys(prefix: string): Promise<string[]> {
    return this.inner.keys(prefix);
  }
}

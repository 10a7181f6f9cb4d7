import { aesGcmDecrypt, aesGcmEncrypt, b64uDecode, b64uEncode, concatBytes, randomBytes } from '@umbra/crypto';

/** Where the SDK keeps its state: identity, token, outbox, de-duplication marks. */
export interface KeyValueStore {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string): Promise<void>;
  delete(key: string): Promise<void>;
  /** Keys starting with `prefix`, in no particular order. */
  keys(prefix: string): Promise<string[]>;
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
}

/**
 * One file per key under a directory, written atomically (temp file + rename). Node only: it loads
 * node:fs lazily so the SDK core stays browser-safe.
 */
export class FileStore implements KeyValueStore {
  constructor(private readonly dir: string) {}

  private async fs() {
    return import('node:fs/promises');
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
    const fs = await this.fs();
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    const tmp = `${this.file(key)}.${Math.random().toString(36).slice(2)}.tmp`;
    await fs.writeFile(tmp, value, { mode: 0o600 });
    await fs.rename(tmp, this.file(key));
  }

  async delete(key: string): Promise<void> {
    const fs = await this.fs();
    await fs.rm(this.file(key), { force: true });
  }

  async keys(prefix: string): Promise<string[]> {
    const fs = await this.fs();
    try {
      return (await fs.readdir(this.dir))
        .filter((f) => !f.endsWith('.tmp'))
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
    const nonce = randomBytes(12);
    await this.inner.set(key, b64uEncode(concatBytes(nonce, aesGcmEncrypt(this.storageKey, nonce, new TextEncoder().encode(key), new TextEncoder().encode(value)))));
  }

  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }

  keys(prefix: string): Promise<string[]> {
    return this.inner.keys(prefix);
  }
}

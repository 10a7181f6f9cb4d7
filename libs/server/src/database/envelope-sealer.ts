import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { ExpiryKeysRepository } from './expiry-keys.repository';
import type { DeviceAddress } from './types';

const NONCE = 12;
const TAG = 16;

export interface SealedContent {
  window: number;
  sealed: Buffer;
}

/**
 * Wraps stored envelope contents with the key of their deadline's expiry window (AES-256-GCM,
 * AD = recipient device ‖ client message id ‖ window) so a row copied elsewhere cannot be moved or
 * read once the window's key is destroyed. Keys are cached per process until their window ends.
 */
export class EnvelopeSealer {
  private readonly cache = new Map<number, Buffer>();
  /** Random nonces are cut from a pool refilled 4 KiB at a time: one RNG call per ~340 envelopes. */
  private noncePool = Buffer.alloc(0);

  constructor(
    private readonly keys: ExpiryKeysRepository,
    readonly windowMs: number,
  ) {}

  windowOf(deleteAt: number): number {
    return Math.ceil(deleteAt / this.windowMs);
  }

  async seal(deleteAt: number, now: number, recipient: DeviceAddress, clientMessageId: Uint8Array, content: Uint8Array): Promise<SealedContent> {
    const window = Math.max(this.windowOf(deleteAt), Math.floor(now / this.windowMs) + 1);
    const key = await this.key(window, now, true);
    if (this.noncePool.length < NONCE) this.noncePool = randomBytes(NONCE * 341);
    const nonce = this.noncePool.subarray(0, NONCE);
    this.noncePool = this.noncePool.subarray(NONCE);
    const c = createCipheriv('aes-256-gcm', key!, nonce);
    c.setAAD(aad(recipient, clientMessageId, window));
    const body = Buffer.concat([nonce, c.update(content), c.final(), c.getAuthTag()]);
    return { window, sealed: body };
  }

  /** The content, or undefined when the window's key is gone (shredded) or the row was tampered with. */
  async open(window: number, now: number, recipient: DeviceAddress, clientMessageId: Uint8Array, sealed: Uint8Array): Promise<Buffer | undefined> {
    if (window === 0) return Buffer.from(sealed);
    return openWith(await this.key(window, now, false), window, recipient, clientMessageId, sealed);
  }

  /**
   * `open` for many rows of one queue read: one key lookup per distinct window, then every row
   * opened without a wait of its own (a page of hundreds of rows shares a window or two).
   */
  async openAll<R extends { keyWindow: number; clientMessageId: Uint8Array; content: Uint8Array }>(
    rows: readonly R[],
    now: number,
    recipientOf: (row: R) => DeviceAddress,
  ): Promise<(Buffer | undefined)[]> {
    const keys = new Map<number, Buffer | undefined>();
    for (const r of rows) if (r.keyWindow !== 0 && !keys.has(r.keyWindow)) keys.set(r.keyWindow, await this.key(r.keyWindow, now, false));
    return rows.map((r) => (r.keyWindow === 0 ? Buffer.from(r.content) : openWith(keys.get(r.keyWindow), r.keyWindow, recipientOf(r), r.clientMessageId, r.content)));
  }

  private async key(window: number, now: number, create: boolean): Promise<Buffer | undefined> {
    if (window * this.windowMs <= now) {
      this.cache.delete(window);
      return undefined;
    }
    const cached = this.cache.get(window);
    if (cached) return cached;
    const key = create ? await this.keys.getOrCreate(window) : await this.keys.get(window);
    if (!key) return undefined;
    if (this.cache.size > 10_000) this.prune(now);
    this.cache.set(window, key);
    return key;
  }

  private prune(now: number): void {
    for (const w of this.cache.keys()) if (w * this.windowMs <= now) this.cache.delete(w);
    if (this.cache.size > 10_000) this.cache.clear();
  }
}

function openWith(key: Buffer | undefined, window: number, recipient: DeviceAddress, clientMessageId: Uint8Array, sealed: Uint8Array): Buffer | undefined {
  if (!key || sealed.length < NONCE + TAG) return undefined;
  try {
    const d = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, NONCE));
    d.setAAD(aad(recipient, clientMessageId, window));
    d.setAuthTag(sealed.subarray(sealed.length - TAG));
    const content = d.update(sealed.subarray(NONCE, sealed.length - TAG));
    // GCM's final() adds no bytes; it throws when the tag does not match, and then nothing is returned.
    d.final();
    return content;
  } catch {
    return undefined;
  }
}

function aad(recipient: DeviceAddress, clientMessageId: Uint8Array, window: number): Buffer {
  const b = Buffer.allocUnsafe(32 + 4 + clientMessageId.length + 8);
  b.set(recipient.accountId, 0);
  b.writeUInt32BE(recipient.deviceId, 32);
  b.set(clientMessageId, 36);
  b.writeBigUInt64BE(BigInt(window), 36 + clientMessageId.length);
  return b;
}

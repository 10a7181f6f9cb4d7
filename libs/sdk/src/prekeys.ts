import { ml_kem1024 } from '@noble/post-quantum/ml-kem.js';
import {
  PREKEY_KIND,
  b64uDecode,
  b64uEncode,
  createPreKeyRecord,
  generateSecretKey,
  pub,
  randomBytes,
  type PreKeyKind,
} from '@umbra/crypto';
import { LIMITS, type KeyCountsResponse, type UploadKeysRequest } from '@umbra/protocol';
import type { LocalIdentity } from './identity';
import type { KeyValueStore } from './store';

/** Where each prekey's private half lives: `prekey/<kind>/<keyId>` → b64u secret (EC key or ML-KEM seed). */
const KEY = (kind: number, id: number) => `prekey/${kind}/${id}`;
const NEXT_ID = 'prekey/next-id';

export interface GeneratedPrekey {
  keyId: number;
  record: Uint8Array;
}

/**
 * Generates this device's prekeys (PROTOCOL.md §2), keeps their private halves in the store and
 * builds the upload. One-time keys come in batches of 100; ids count up and are never reused.
 */
export class PrekeyManager {
  constructor(
    private readonly store: KeyValueStore,
    private readonly identity: () => LocalIdentity,
    private readonly now: () => number = () => Date.now(),
  ) {}

  private async nextIds(n: number): Promise<number[]> {
    const start = Number((await this.store.get(NEXT_ID)) ?? '0');
    await this.store.set(NEXT_ID, String(start + n));
    return Array.from({ length: n }, (_x, i) => (start + i) % 2 ** 32);
  }

  private async generate(kind: PreKeyKind, keyId: number): Promise<GeneratedPrekey> {
    const id = this.identity();
    let secret: Uint8Array;
    let publicKey: Uint8Array;
    if (kind === PREKEY_KIND.PQOPK || kind === PREKEY_KIND.PQLR) {
      secret = randomBytes(64);
      publicKey = ml_kem1024.keygen(secret).publicKey;
    } else {
      secret = generateSecretKey();
      publicKey = pub(secret);
    }
    await this.store.set(KEY(kind, keyId), b64uEncode(secret));
    const record = createPreKeyRecord({ accountId: id.accountId, deviceId: id.device.deviceId, kind, keyId, publicKey, createdAt: this.now() }, id.device.dikSk);
    return { keyId, record };
  }

  /** The private half of a prekey this device published (EC secret key or 64-byte ML-KEM seed). */
  async secret(kind: PreKeyKind, keyId: number): Promise<Uint8Array | undefined> {
    const v = await this.store.get(KEY(kind, keyId));
    return v ? b64uDecode(v) : undefined;
  }

  /** Deletes a one-time key's private half after its first successful use. */
  async consume(kind: PreKeyKind, keyId: number): Promise<void> {
    await this.store.delete(KEY(kind, keyId));
  }

  /** What to upload so the server holds a current SPK, a last-resort KEM key and `target` one-time keys of each kind. */
  async buildUpload(counts: KeyCountsResponse | undefined, target: number = LIMITS.MAX_PREKEYS_PER_UPLOAD): Promise<UploadKeysRequest> {
    const req: UploadKeysRequest = {};
    const enc = (k: GeneratedPrekey) => b64uEncode(k.record);
    if (!counts?.signedPreKey) req.signedPreKey = enc(await this.generate(PREKEY_KIND.SPK, (await this.nextIds(1))[0]!));
    if (!counts?.lastResortKemPreKey) req.lastResortKemPreKey = enc(await this.generate(PREKEY_KIND.PQLR, (await this.nextIds(1))[0]!));
    const otk = Math.min(LIMITS.MAX_PREKEYS_PER_UPLOAD, target - (counts?.oneTimePreKeys ?? 0));
    const kem = Math.min(LIMITS.MAX_PREKEYS_PER_UPLOAD, target - (counts?.oneTimeKemPreKeys ?? 0));
    if (otk > 0) req.oneTimePreKeys = await Promise.all((await this.nextIds(otk)).map(async (i) => enc(await this.generate(PREKEY_KIND.OPK, i))));
    if (kem > 0) req.oneTimeKemPreKeys = await Promise.all((await this.nextIds(kem)).map(async (i) => enc(await this.generate(PREKEY_KIND.PQOPK, i))));
    return req;
  }
}

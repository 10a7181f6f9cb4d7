import { ml_kem1024 } from '@noble/post-quantum/ml-kem.js';
import {
  PREKEY_KIND,
  b64uEncode,
  createPreKeyRecord,
  generateSecretKey,
  pub,
  randomBytes,
  sha256,
  type PreKeyKind,
} from '@umbra/crypto';
import { LIMITS, type KeyCountsResponse, type UploadKeysRequest } from '@umbra/protocol';
import type { LocalIdentity } from './identity';
import { LocalState } from './state/local.state';
import { STATE_FAMILIES, STATE_KEYS } from './state/state.keys';
import type { KeyValueStore } from './store';

const replayKey = (spkId: number, ek: Uint8Array) => STATE_KEYS.replay(spkId, b64uEncode(sha256(ek)));

type SignedKind = typeof PREKEY_KIND.SPK | typeof PREKEY_KIND.PQLR;

interface CurrentSigned {
  kind: SignedKind;
  keyId: number;
  createdAt: number;
  /** The signed public record (b64u), re-sent until the server has it. */
  record: string;
  uploaded: boolean;
}

export interface SignedState {
  current: CurrentSigned[];
  retired: { kind: SignedKind; keyId: number; retiredAt: number }[];
}

export interface GeneratedPrekey {
  keyId: number;
  record: Uint8Array;
}

/**
 * Generates this device's prekeys (PROTOCOL.md §2), keeps their private halves in the store and
 * builds the upload. One-time keys come in batches of 100; ids count up and are never reused. The
 * signed prekey and the last-resort KEM key are replaced together every 7 days; a replaced one's
 * private half is kept 30 days for sessions still in flight, then deleted with its replay cache.
 */
export class PrekeyManager {
  private readonly state: LocalState;

  constructor(
    store: KeyValueStore,
    private readonly identity: () => LocalIdentity,
    private readonly now: () => number = () => Date.now(),
  ) {
    this.state = new LocalState(store);
  }

  private async nextIds(n: number): Promise<number[]> {
    const start = (await this.state.get(STATE_KEYS.prekeyNextId)) ?? 0;
    await this.state.set(STATE_KEYS.prekeyNextId, start + n);
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
    await this.state.set(STATE_KEYS.prekey(kind, keyId), secret);
    const record = createPreKeyRecord({ accountId: id.accountId, deviceId: id.device.deviceId, kind, keyId, publicKey, createdAt: this.now() }, id.device.dikSk);
    return { keyId, record };
  }

  /** The private half of a prekey this device published (EC secret key or 64-byte ML-KEM seed). */
  secret(kind: PreKeyKind, keyId: number): Promise<Uint8Array | undefined> {
    return this.state.get(STATE_KEYS.prekey(kind, keyId));
  }

  /** Deletes a one-time key's private half after its first successful use (into `kv`, the receive's batch, when given). */
  async consume(kind: PreKeyKind, keyId: number, kv?: KeyValueStore): Promise<void> {
    await this.over(kv).delete(STATE_KEYS.prekey(kind, keyId));
  }

  /** §2/§3 replay cache: whether an initial message with this EK_A was already processed under this SPK. */
  replayed(spkId: number, ek: Uint8Array, kv?: KeyValueStore): Promise<boolean> {
    return this.over(kv).has(replayKey(spkId, ek));
  }

  /** Records SHA256(EK_A) of a processed initial message until its SPK is deleted. */
  async recordInitial(spkId: number, ek: Uint8Array, kv?: KeyValueStore): Promise<void> {
    await this.over(kv).set(replayKey(spkId, ek), this.now());
  }

  private over(kv: KeyValueStore | undefined): LocalState {
    return kv ? new LocalState(kv) : this.state;
  }

  /** The current signed prekey's and last-resort KEM key's ids and creation times, and the replaced ones still kept. */
  async signedKeys(): Promise<{ current: { kind: SignedKind; keyId: number; createdAt: number; uploaded: boolean }[]; retired: SignedState['retired'] }> {
    const s = await this.signedState();
    return { current: s.current.map(({ kind, keyId, createdAt, uploaded }) => ({ kind, keyId, createdAt, uploaded })), retired: s.retired };
  }

  private async signedState(): Promise<SignedState> {
    const stored = await this.state.get(STATE_KEYS.prekeySigned);
    if (stored) return stored;
    // A store from before rotation: whatever signed keys it holds count as replaced now.
    const retired: SignedState['retired'] = [];
    for (const kind of [PREKEY_KIND.SPK, PREKEY_KIND.PQLR] as const) {
      for (const keyId of await this.state.suffixes(STATE_FAMILIES.prekey(kind))) retired.push({ kind, keyId: Number(keyId), retiredAt: this.now() });
    }
    return { current: [], retired };
  }

  /** Whether this device has ever generated prekeys (a client that never published any is left alone). */
  async published(): Promise<boolean> {
    return (await this.state.has(STATE_KEYS.prekeySigned)) || (await this.state.suffixes(STATE_FAMILIES.prekey(PREKEY_KIND.SPK))).length > 0;
  }

  /** True when the signed prekey is missing, not yet on the server, or due for rotation. */
  async rotationDue(): Promise<boolean> {
    const s = await this.signedState();
    const now = this.now();
    return s.current.length < 2 || s.current.some((k) => !k.uploaded || now - k.createdAt >= LIMITS.SIGNED_PREKEY_ROTATION_MS);
  }

  /** Deletes replaced signed keys (and the replay cache of each deleted SPK) kept longer than 30 days. Returns how many. */
  async prune(): Promise<number> {
    const s = await this.signedState();
    const now = this.now();
    const expired = s.retired.filter((r) => now - r.retiredAt >= LIMITS.SIGNED_PREKEY_RETENTION_MS);
    if (expired.length === 0) return 0;
    for (const r of expired) {
      await this.state.delete(STATE_KEYS.prekey(r.kind, r.keyId));
      if (r.kind === PREKEY_KIND.SPK) for (const ekHash of await this.state.suffixes(STATE_FAMILIES.replay(r.keyId))) await this.state.delete(STATE_KEYS.replay(r.keyId, ekHash));
    }
    await this.state.set(STATE_KEYS.prekeySigned, { ...s, retired: s.retired.filter((r) => !expired.includes(r)) });
    return expired.length;
  }

  /** A new signed prekey and last-resort KEM key when due; the replaced ones are kept (see prune). */
  private async rotate(): Promise<SignedState> {
    const s = await this.signedState();
    const now = this.now();
    if (s.current.length === 2 && s.current.every((k) => now - k.createdAt < LIMITS.SIGNED_PREKEY_ROTATION_MS)) return s;
    const [spkId, pqlrId] = await this.nextIds(2);
    const spk = await this.generate(PREKEY_KIND.SPK, spkId!);
    const pqlr = await this.generate(PREKEY_KIND.PQLR, pqlrId!);
    const next: SignedState = {
      current: [
        { kind: PREKEY_KIND.SPK, keyId: spkId!, createdAt: now, record: b64uEncode(spk.record), uploaded: false },
        { kind: PREKEY_KIND.PQLR, keyId: pqlrId!, createdAt: now, record: b64uEncode(pqlr.record), uploaded: false },
      ],
      retired: [...s.retired, ...s.current.map((k) => ({ kind: k.kind, keyId: k.keyId, retiredAt: now }))],
    };
    await this.state.set(STATE_KEYS.prekeySigned, next);
    return next;
  }

  /** After the server accepted an upload: the current signed keys are published. */
  async markUploaded(): Promise<void> {
    const s = await this.signedState();
    if (s.current.every((k) => k.uploaded)) return;
    await this.state.set(STATE_KEYS.prekeySigned, { ...s, current: s.current.map((k) => ({ ...k, uploaded: true })) });
  }

  /**
   * What to upload so the server holds a current SPK, a last-resort KEM key and `target` one-time
   * keys of each kind; rotates the signed keys when due and prunes replaced ones.
   */
  async buildUpload(counts: KeyCountsResponse | undefined, target: number = LIMITS.MAX_PREKEYS_PER_UPLOAD): Promise<UploadKeysRequest> {
    const req: UploadKeysRequest = {};
    const enc = (k: GeneratedPrekey) => b64uEncode(k.record);
    await this.prune();
    const signed = await this.rotate();
    for (const k of signed.current) {
      const onServer = k.kind === PREKEY_KIND.SPK ? counts?.signedPreKey : counts?.lastResortKemPreKey;
      if (k.uploaded && onServer) continue;
      if (k.kind === PREKEY_KIND.SPK) req.signedPreKey = k.record;
      else req.lastResortKemPreKey = k.record;
    }
    const otk = Math.min(LIMITS.MAX_PREKEYS_PER_UPLOAD, target - (counts?.oneTimePreKeys ?? 0));
    const kem = Math.min(LIMITS.MAX_PREKEYS_PER_UPLOAD, target - (counts?.oneTimeKemPreKeys ?? 0));
    if (otk > 0) req.oneTimePreKeys = await Promise.all((await this.nextIds(otk)).map(async (i) => enc(await this.generate(PREKEY_KIND.OPK, i))));
    if (kem > 0) req.oneTimeKemPreKeys = await Promise.all((await this.nextIds(kem)).map(async (i) => enc(await this.generate(PREKEY_KIND.PQOPK, i))));
    return req;
  }
}

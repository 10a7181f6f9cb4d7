import { Inject, Injectable } from '@nestjs/common';
import {
  CryptoError,
  PREKEY_KIND,
  bytesEqual,
  decodeAccountId,
  encodePreKeyBundle,
  parsePreKeyRecord,
  parseSignedDeviceList,
  verifyPreKeyRecord,
  type PreKeyRecord,
} from '@umbra/crypto';
import { LIMITS, type BundlesResponse, type KeyCountsResponse, type UploadKeysRequest } from '@umbra/protocol';
import {
  APP_CONFIG,
  AccountsRepository,
  ApiError,
  Bus,
  Channels,
  LOGGER,
  PrekeysRepository,
  RateLimiter,
  deviceKey,
  type AppConfig,
  type AuthContext,
  type DeviceAddress,
  type KeysLowMessage,
  type Logger,
  type StoredPrekey,
} from '@umbra/server';

const HOUR = 3600_000;

/** Prekeys (PROTOCOL.md §2): uploads checked record by record, bundles that hand each one-time key out once. */
@Injectable()
export class KeysService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(AccountsRepository) private readonly accounts: AccountsRepository,
    @Inject(PrekeysRepository) private readonly prekeys: PrekeysRepository,
    @Inject(RateLimiter) private readonly limiter: RateLimiter,
    @Inject(Bus) private readonly bus: Bus,
  ) {}

  async upload(auth: AuthContext, req: UploadKeysRequest): Promise<void> {
    await this.limiter.hit('keys-upload', auth.accountIdText, this.config.RATE_LIMIT_ACCOUNT_CHANGES_PER_HOUR * 10, HOUR);
    const device = await this.accounts.findDevice(auth.accountId, auth.deviceId);
    if (!device) throw new ApiError('TOKEN_INVALID', 'device no longer in its account');
    const check = (b64: string, kind: number, field: string): StoredPrekey => {
      let record: PreKeyRecord;
      try {
        record = parsePreKeyRecord(Buffer.from(b64, 'base64url'));
        verifyPreKeyRecord(record, device.dik);
      } catch (err) {
        if (err instanceof CryptoError && err.code === 'BAD_SIGNATURE') throw new ApiError('BAD_SIGNATURE', `${field}: signature does not verify under this device's key`);
        throw new ApiError('BAD_PREKEY', `${field}: ${err instanceof CryptoError ? err.message : 'malformed'}`);
      }
      if (record.kind !== kind) throw new ApiError('BAD_PREKEY', `${field}: kind ${record.kind}, expected ${kind}`);
      if (!bytesEqual(record.accountId, auth.accountId) || record.deviceId !== auth.deviceId) throw new ApiError('BAD_PREKEY', `${field}: record names another device`);
      return { keyId: record.keyId, record: record.bytes };
    };
    const upload = {
      ...(req.signedPreKey ? { signedPreKey: check(req.signedPreKey, PREKEY_KIND.SPK, 'signedPreKey') } : {}),
      ...(req.lastResortKemPreKey ? { lastResortKemPreKey: check(req.lastResortKemPreKey, PREKEY_KIND.PQLR, 'lastResortKemPreKey') } : {}),
      oneTimePreKeys: (req.oneTimePreKeys ?? []).map((k, i) => check(k, PREKEY_KIND.OPK, `oneTimePreKeys.${i}`)),
      oneTimeKemPreKeys: (req.oneTimeKemPreKeys ?? []).map((k, i) => check(k, PREKEY_KIND.PQOPK, `oneTimeKemPreKeys.${i}`)),
    };
    await this.prekeys.upload(auth, upload);
    this.logger.info({ otk: upload.oneTimePreKeys.length, kem: upload.oneTimeKemPreKeys.length, spk: !!upload.signedPreKey, pqlr: !!upload.lastResortKemPreKey }, 'prekeys uploaded');
  }

  counts(auth: AuthContext): Promise<KeyCountsResponse> {
    return this.prekeys.counts(auth);
  }

  async bundles(auth: AuthContext, accountIdText: string, onlyDevice?: number): Promise<BundlesResponse> {
    await this.limiter.hit('bundle-fetch', auth.accountIdText, this.config.RATE_LIMIT_BUNDLE_FETCH_PER_ACCOUNT_PER_HOUR, HOUR);
    const accountId = decodeAccountId(accountIdText);
    const account = await this.accounts.findById(accountId);
    if (!account) throw new ApiError('ACCOUNT_NOT_FOUND', 'no such account');
    const list = parseSignedDeviceList(account.deviceList);
    const devices = list.devices.filter((d) => onlyDevice === undefined || d.deviceId === onlyDevice);
    const out: BundlesResponse = { accountId: accountIdText, listVersion: list.listVersion, bundles: [], withoutKeys: [] };
    const low: KeysLowMessage[] = [];
    for (const cert of devices) {
      const target: DeviceAddress = { accountId, deviceId: cert.deviceId };
      const own = bytesEqual(accountId, auth.accountId) && cert.deviceId === auth.deviceId;
      const takeOneTime = !own && (await this.limiter.tryHit('otk-pair', `${auth.accountIdText}:${deviceKey(target)}`, this.config.RATE_LIMIT_ONE_TIME_KEYS_PER_PAIR_PER_HOUR, HOUR));
      const keys = await this.prekeys.claim(target, takeOneTime);
      if (!keys) {
        out.withoutKeys.push(cert.deviceId);
        continue;
      }
      out.bundles.push({ deviceId: cert.deviceId, bundle: Buffer.from(encodePreKeyBundle({ certificate: cert.bytes, ...keys })).toString('base64url') });
      if (takeOneTime) {
        const counts = await this.prekeys.counts(target);
        if (counts.oneTimePreKeys < LIMITS.PREKEY_LOW_THRESHOLD || counts.oneTimeKemPreKeys < LIMITS.PREKEY_LOW_THRESHOLD) {
          low.push({ device: deviceKey(target), oneTimePreKeys: counts.oneTimePreKeys, oneTimeKemPreKeys: counts.oneTimeKemPreKeys });
        }
      }
    }
    await this.bus.publishMany(low.map((message) => ({ channel: Channels.keysLow(this.config.REDIS_PREFIX), message })));
    return out;
  }
}

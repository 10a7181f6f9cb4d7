import { Inject, Injectable } from '@nestjs/common';
import {
  CryptoError,
  bytesEqual,
  canonicalHandle,
  decodeAccountId,
  encodeAccountId,
  parseSignedDeviceList,
  verifySignedDeviceList,
  verifySignedHandleClaim,
  type SignedDeviceList,
} from '@umbra/crypto';
import {
  LIMITS,
  checkPow,
  type AccountResponse,
  type PowChallengeResponse,
  type RegisterRequest,
  type TokenResponse,
} from '@umbra/protocol';
import {
  APP_CONFIG,
  AccountsRepository,
  ApiError,
  AuthResponseVerifier,
  Bus,
  ChallengeStore,
  Channels,
  Clock,
  LOGGER,
  Metrics,
  RateLimiter,
  TokenService,
  describeFailure,
  type AccountRow,
  type AppConfig,
  type AuthContext,
  type DevicesChangedMessage,
  type Logger,
} from '@umbra/server';

const HOUR = 3600_000;
const MINUTE = 60_000;
/** Delays between attempts to publish devices-changed after the commit (the commit stands either way). */
const PUBLISH_RETRY_DELAYS_MS = [250, 1000, 5000, 15_000, 60_000];

function decode(s: string): Buffer {
  return Buffer.from(s, 'base64url');
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

@Injectable()
export class AccountsService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(AccountsRepository) private readonly accounts: AccountsRepository,
    @Inject(ChallengeStore) private readonly challenges: ChallengeStore,
    @Inject(AuthResponseVerifier) private readonly authVerifier: AuthResponseVerifier,
    @Inject(TokenService) private readonly tokens: TokenService,
    @Inject(RateLimiter) private readonly limiter: RateLimiter,
    @Inject(Bus) private readonly bus: Bus,
    @Inject(Clock) private readonly clock: Clock,
    @Inject(Metrics) private readonly metrics: Metrics,
  ) {}

  async powChallenge(ip: string): Promise<PowChallengeResponse> {
    await this.limiter.hit('pow-ip', ip, this.config.RATE_LIMIT_REGISTER_PER_IP_PER_HOUR * 5, HOUR);
    const difficulty = this.config.POW_DIFFICULTY;
    const challenge = await this.challenges.issue('pow', LIMITS.POW_CHALLENGE_TTL_S, String(difficulty));
    return {
      challenge: Buffer.from(challenge).toString('base64url'),
      difficulty,
      expiresAt: this.clock.now() + LIMITS.POW_CHALLENGE_TTL_S * 1000,
    };
  }

  /** Cheapest check first: the per-address limit, then parsing, the proof of work, and only then signatures. */
  async register(req: RegisterRequest, ip: string): Promise<TokenResponse> {
    await this.limiter.hit('register-ip', ip, this.config.RATE_LIMIT_REGISTER_PER_IP_PER_HOUR, HOUR);
    const parsed = this.parseList(decode(req.deviceList));
    if (parsed.listVersion !== 1) throw new ApiError('BAD_DEVICE_LIST', 'a new account starts with list_version 1');

    const challenge = decode(req.pow.challenge);
    const stored = await this.challenges.consume('pow', challenge);
    if (stored === null) throw new ApiError('POW_INVALID', 'proof-of-work challenge unknown, expired or already used');
    if (!checkPow(challenge, parsed.accountId, decode(req.pow.solution), Number(stored))) {
      throw new ApiError('POW_INVALID', 'proof of work does not meet the difficulty');
    }
    await this.limiter.hit('register-account', hex(parsed.accountId), this.config.RATE_LIMIT_REGISTER_PER_ACCOUNT_PER_HOUR, HOUR);
    const list = this.verifyList(parsed.bytes);

    const { accountId, deviceId } = await this.authVerifier.verify(decode(req.authResponse), async (acct, dev) => {
      if (!bytesEqual(acct, list.accountId)) return 'no-account';
      return list.devices.find((d) => d.deviceId === dev)?.dik ?? 'no-device';
    });

    const created = await this.accounts.create({
      id: list.accountId,
      aik: list.aik,
      suite: list.suite,
      listVersion: list.listVersion,
      deviceList: list.bytes,
      devices: list.devices.map((d) => ({ deviceId: d.deviceId, dik: Buffer.from(d.dik), flags: d.flags, createdAtMs: d.createdAt })),
    });
    if (!created) throw new ApiError('ACCOUNT_EXISTS', 'an account with this identity key is already registered');
    const token = await this.tokens.issue(accountId, deviceId);
    this.metrics.registrations.inc();
    this.logger.info({ devices: list.devices.length }, 'account registered');
    return { ...token, accountId: encodeAccountId(accountId), deviceId };
  }

  async getAccount(auth: AuthContext, accountIdText: string): Promise<AccountResponse> {
    await this.limiter.hit('lookup', auth.accountIdText, this.config.RATE_LIMIT_LOOKUP_PER_ACCOUNT_PER_MINUTE, MINUTE);
    const row = await this.accounts.findById(this.decodeAccountId(accountIdText));
    if (!row) throw new ApiError('ACCOUNT_NOT_FOUND', 'no such account');
    return this.present(row);
  }

  async getAccountByHandle(auth: AuthContext, handle: string): Promise<AccountResponse> {
    await this.limiter.hit('lookup', auth.accountIdText, this.config.RATE_LIMIT_LOOKUP_PER_ACCOUNT_PER_MINUTE, MINUTE);
    let canonical: string;
    try {
      canonical = canonicalHandle(handle);
    } catch {
      throw new ApiError('INVALID_HANDLE', `handles are ${LIMITS.HANDLE_MIN_LENGTH}–${LIMITS.HANDLE_MAX_LENGTH} of [a-z0-9_] after NFKC and lower-casing`);
    }
    const row = await this.accounts.findByHandle(canonical);
    if (!row) throw new ApiError('HANDLE_NOT_FOUND', 'no account holds this handle');
    return this.present(row);
  }

  async updateDevices(auth: AuthContext, deviceList: string): Promise<{ listVersion: number; removedDeviceIds: number[] }> {
    await this.limiter.hit('account-changes', auth.accountIdText, this.config.RATE_LIMIT_ACCOUNT_CHANGES_PER_HOUR, HOUR);
    const list = this.verifyList(decode(deviceList));
    if (!bytesEqual(list.accountId, auth.accountId)) throw new ApiError('FORBIDDEN', 'the list belongs to another account');
    const result = await this.accounts.replaceDeviceList(auth.accountId, {
      listVersion: list.listVersion,
      deviceList: list.bytes,
      devices: list.devices.map((d) => ({ deviceId: d.deviceId, dik: Buffer.from(d.dik), flags: d.flags, createdAtMs: d.createdAt })),
    });
    if (!result.ok) {
      throw new ApiError('DEVICE_LIST_STALE', `list_version must be greater than the current ${result.currentVersion}`, { currentVersion: result.currentVersion });
    }
    const message: DevicesChangedMessage = { account: hex(auth.accountId), listVersion: list.listVersion, removed: result.removed, added: result.added };
    await this.publishDevicesChanged(message, 0);
    this.logger.info({ listVersion: list.listVersion, removed: result.removed.length, added: result.added.length }, 'device list replaced');
    return { listVersion: list.listVersion, removedDeviceIds: result.removed };
  }

  async claimHandle(auth: AuthContext, claimB64: string): Promise<{ handle: string }> {
    await this.limiter.hit('account-changes', auth.accountIdText, this.config.RATE_LIMIT_ACCOUNT_CHANGES_PER_HOUR, HOUR);
    const account = await this.accounts.findById(auth.accountId);
    if (!account) throw new ApiError('ACCOUNT_NOT_FOUND', 'no such account');
    const bytes = decode(claimB64);
    let claim: ReturnType<typeof verifySignedHandleClaim>;
    try {
      claim = verifySignedHandleClaim(bytes, account.aik);
    } catch (err) {
      if (err instanceof CryptoError && err.code === 'INVALID_HANDLE') throw new ApiError('INVALID_HANDLE', 'the claimed handle is not canonical or not allowed');
      if (err instanceof CryptoError && err.code === 'BAD_SIGNATURE') throw new ApiError('BAD_SIGNATURE', 'handle claim signature does not verify under the account key');
      if (err instanceof CryptoError && err.code === 'UNSUPPORTED_SUITE') throw new ApiError('UNSUPPORTED_SUITE', 'unsupported suite');
      throw new ApiError('BAD_HANDLE_CLAIM', `malformed SignedHandleClaim${err instanceof CryptoError ? `: ${err.message}` : ''}`);
    }
    if (!bytesEqual(claim.accountId, auth.accountId)) throw new ApiError('FORBIDDEN', 'the claim names another account');
    const outcome = await this.accounts.setHandle(auth.accountId, claim.handle, bytes, claim.claimVersion);
    if (outcome === 'taken') throw new ApiError('HANDLE_TAKEN', 'another account holds this handle');
    if (outcome === 'stale') throw new ApiError('HANDLE_CLAIM_STALE', 'claim_version must be greater than the last accepted claim');
    return { handle: claim.handle };
  }

  async releaseHandle(auth: AuthContext): Promise<void> {
    if (!(await this.accounts.releaseHandle(auth.accountId))) throw new ApiError('HANDLE_NOT_FOUND', 'this account holds no handle');
  }

  /**
   * The list is committed: a failed notification must not fail the request (the client would retry a
   * version that is no longer new). Retried in the background; gateways also re-check devices on send.
   */
  private async publishDevicesChanged(message: DevicesChangedMessage, attempt: number): Promise<void> {
    try {
      await this.bus.publish(Channels.devicesChanged(this.config.REDIS_PREFIX), message);
      if (attempt > 0) this.logger.info({ channel: 'devices-changed', attempt }, 'devices-changed published after a retry');
    } catch (err) {
      const delay = PUBLISH_RETRY_DELAYS_MS[attempt];
      if (delay === undefined) {
        this.logger.error({ channel: 'devices-changed', attempt, err: describeFailure(err) }, 'devices-changed publish failed after the commit; giving up');
        return;
      }
      this.logger.warn({ channel: 'devices-changed', attempt, err: describeFailure(err) }, 'devices-changed publish failed after the commit; will retry');
      setTimeout(() => void this.publishDevicesChanged(message, attempt + 1), delay).unref();
    }
  }

  /** Structure only (no signature checked): enough for the account id the proof of work binds. */
  private parseList(bytes: Uint8Array): SignedDeviceList {
    try {
      return parseSignedDeviceList(bytes);
    } catch (err) {
      if (err instanceof CryptoError && err.code === 'UNSUPPORTED_SUITE') throw new ApiError('UNSUPPORTED_SUITE', 'unsupported suite');
      throw new ApiError('BAD_DEVICE_LIST', `device list rejected${err instanceof CryptoError ? `: ${err.message}` : ''}`);
    }
  }

  private verifyList(bytes: Uint8Array): SignedDeviceList {
    let list: SignedDeviceList;
    try {
      list = verifySignedDeviceList(bytes);
    } catch (err) {
      if (err instanceof CryptoError && err.code === 'UNSUPPORTED_SUITE') throw new ApiError('UNSUPPORTED_SUITE', 'unsupported suite');
      if (err instanceof CryptoError && err.code === 'BAD_SIGNATURE') throw new ApiError('BAD_SIGNATURE', `device list: ${err.message}`);
      throw new ApiError('BAD_DEVICE_LIST', `device list rejected${err instanceof CryptoError ? `: ${err.message}` : ''}`);
    }
    if (list.devices.length > LIMITS.MAX_DEVICES_PER_ACCOUNT) {
      throw new ApiError('TOO_MANY_DEVICES', `at most ${LIMITS.MAX_DEVICES_PER_ACCOUNT} devices per account`);
    }
    return list;
  }

  private decodeAccountId(text: string): Uint8Array {
    try {
      return decodeAccountId(text);
    } catch {
      throw new ApiError('VALIDATION_FAILED', 'not an account id');
    }
  }

  private async present(row: AccountRow): Promise<AccountResponse> {
    const devices = await this.accounts.devices(row.id);
    return {
      accountId: encodeAccountId(row.id),
      listVersion: row.listVersion,
      deviceList: row.deviceList.toString('base64url'),
      devices: devices.map((d) => ({ deviceId: d.deviceId, flags: d.flags, createdAt: d.createdAtMs })),
      handle: row.handle,
      handleClaim: row.handleClaim ? row.handleClaim.toString('base64url') : null,
    };
  }
}

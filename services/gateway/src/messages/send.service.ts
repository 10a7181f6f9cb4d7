import { Inject, Injectable } from '@nestjs/common';
import { decodeAccountId } from '@umbra/crypto';
import { LIMITS, type DeviceMismatch, type SendRequest, type SendResult } from '@umbra/protocol';
import { APP_CONFIG, ApiError, Clock, Metrics, TokenService, type AppConfig, type AuthContext } from '@umbra/server';
import { DeviceSetsCache } from './device-sets.cache';
import { RelayClient } from './relay.client';
import { SendLimiter } from './send.limiter';

/** bech32m account id → hex, cached: decoding (checksum included) showed up in send profiles. */
const accountHex = new Map<string, string>();
function toAccountHex(text: string): string {
  let hex = accountHex.get(text);
  if (hex === undefined) {
    hex = Buffer.from(decodeAccountId(text)).toString('hex');
    if (accountHex.size >= 50_000) accountHex.clear();
    accountHex.set(text, hex);
  }
  return hex;
}

function decodedLength(b64u: string): number {
  return Math.floor((b64u.length * 3) / 4);
}

/**
 * Every send, REST or socket: takes one from the device's shared rate limit, checks that the sending
 * device is still in its account's list and its token still exists (a removed or re-keyed device whose
 * socket outlived a lost revocation broadcast is refused within DEVICE_SET_CACHE_TTL_MS), validates the
 * recipients against their current device lists, and hands it to the relay.
 */
@Injectable()
export class SendService {
  constructor(
    @Inject(DeviceSetsCache) private readonly deviceSets: DeviceSetsCache,
    @Inject(RelayClient) private readonly relay: RelayClient,
    @Inject(SendLimiter) private readonly limiter: SendLimiter,
    @Inject(TokenService) private readonly tokens: TokenService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(Metrics) private readonly metrics: Metrics,
    @Inject(Clock) private readonly clock: Clock,
  ) {}

  async send(auth: AuthContext, req: SendRequest): Promise<SendResult> {
    const started = process.hrtime.bigint();
    if (req.expiresAt && req.expiresAt <= this.clock.now()) throw new ApiError('ALREADY_EXPIRED', 'expiresAt has passed; the message would vanish before delivery');
    let total = 0;
    const byAccount = new Map<string, { text: string; devices: Set<number> }>();
    const recipients: { account: string; deviceId: number; type: number; content: string }[] = [];
    for (const r of req.recipients) {
      total += decodedLength(r.content);
      const hex = toAccountHex(r.accountId);
      let entry = byAccount.get(hex);
      if (!entry) {
        entry = { text: r.accountId, devices: new Set() };
        byAccount.set(hex, entry);
      }
      if (entry.devices.has(r.deviceId)) throw new ApiError('DUPLICATE_RECIPIENT', `device ${r.deviceId} of ${r.accountId} appears twice`);
      entry.devices.add(r.deviceId);
      recipients.push({ account: hex, deviceId: r.deviceId, type: r.type, content: r.content });
    }
    if (total > LIMITS.MAX_SEND_TOTAL_BYTES) throw new ApiError('PAYLOAD_TOO_LARGE', `a send carries at most ${LIMITS.MAX_SEND_TOTAL_BYTES} bytes of envelopes`);
    const senderHex = auth.accountId.toString('hex');
    if (byAccount.has(senderHex) && byAccount.get(senderHex)!.devices.has(auth.deviceId)) {
      throw new ApiError('DUPLICATE_RECIPIENT', 'a device does not send to itself');
    }

    // The limit, the (usually cached) device check and, for a socket's context older than the TTL, the
    // token re-check run side by side: one Redis round trip, no added latency.
    const [, first] = await Promise.all([
      this.limiter.take(auth),
      this.checkDevices(byAccount, senderHex, auth.deviceId, false),
      this.tokens.stillValid(auth, this.config.DEVICE_SET_CACHE_TTL_MS),
    ]);
    let mismatch = first;
    if (mismatch) mismatch = await this.checkDevices(byAccount, senderHex, auth.deviceId, true);
    if (mismatch && mismatch !== 'sender-removed') throw new ApiError('DEVICE_MISMATCH', 'recipient devices differ from the current device lists; refetch them and retry', mismatch);

    this.metrics.messagesAccepted.inc();
    const result = await this.relay.submit({
      senderAccount: senderHex,
      senderDevice: auth.deviceId,
      clientMessageId: req.clientMessageId,
      expiresAt: req.expiresAt ?? 0,
      readTtlS: req.readTtlS ?? 0,
      ...(req.attachments && req.attachments.length > 0 ? { attachments: [...new Set(req.attachments)] } : {}),
      ...(req.urgent ? { urgent: true as const } : {}),
      recipients,
    });
    this.metrics.storedLatency.observe(Number(process.hrtime.bigint() - started) / 1e9);
    return result;
  }

  private async checkDevices(
    byAccount: Map<string, { text: string; devices: Set<number> }>,
    senderHex: string,
    senderDevice: number,
    fresh: boolean,
  ): Promise<DeviceMismatch | 'sender-removed' | undefined> {
    const sets = await this.deviceSets.get(byAccount.has(senderHex) ? [...byAccount.keys()] : [...byAccount.keys(), senderHex], fresh, senderHex);
    if (!sets.get(senderHex)?.includes(senderDevice)) {
      if (fresh) throw new ApiError('DEVICE_NOT_IN_LIST', 'this device is no longer in its account\'s device list');
      return 'sender-removed';
    }
    const missing: DeviceMismatch['missing'] = [];
    const extra: DeviceMismatch['extra'] = [];
    for (const [hex, { text, devices }] of byAccount) {
      const current = sets.get(hex);
      if (!current) throw new ApiError('ACCOUNT_NOT_FOUND', `no account ${text}`);
      const expected = hex === senderHex ? current.filter((d) => d !== senderDevice) : current;
      const expectedSet = new Set(expected);
      const miss = expected.filter((d) => !devices.has(d));
      const ext = [...devices].filter((d) => !expectedSet.has(d)).sort((a, b) => a - b);
      if (miss.length) missing.push({ accountId: text, deviceIds: miss });
      if (ext.length) extra.push({ accountId: text, deviceIds: ext });
    }
    return missing.length || extra.length ? { missing, extra } : undefined;
  }
}

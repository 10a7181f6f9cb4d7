import { randomBytes } from 'node:crypto';
import { encodeAccountId } from '@umbra/crypto';
import { ApiError, ManualClock, Metrics, strictStub, type AppConfig, type AuthContext, type TokenService } from '@umbra/server';
import type { DeviceSetsCache } from './device-sets.cache';
import type { RelayClient } from './relay.client';
import type { SendLimiter } from './send.limiter';
import { SendService } from './send.service';

const strict = strictStub;

describe('SendService (strict stubs)', () => {
  const senderId = randomBytes(32);
  const recipientId = randomBytes(32);
  const sender = senderId.toString('hex');
  const recipient = recipientId.toString('hex');
  const auth: AuthContext = { accountId: senderId, accountIdText: encodeAccountId(senderId), deviceId: 7, expiresAt: Date.now() + 3600_000 };
  const request = { clientMessageId: randomBytes(16).toString('base64url'), recipients: [{ accountId: encodeAccountId(recipientId), deviceId: 1, type: 2 as const, content: 'AAAA' }] };
  const config = { DEVICE_SET_CACHE_TTL_MS: 5000 } as AppConfig;

  function service(lists: (fresh: boolean) => Map<string, number[]>, over: { limiter?: Partial<SendLimiter> } = {}) {
    const reads: boolean[] = [];
    const submitted: unknown[] = [];
    const tokenChecks: number[] = [];
    const svc = new SendService(
      strict<DeviceSetsCache>({ get: async (accounts, fresh, s) => (reads.push(fresh), expect(s).toBe(sender), expect(accounts).toContain(sender), lists(fresh)) }),
      strict<RelayClient>({ submit: async (s) => (submitted.push(s), { clientMessageId: request.clientMessageId, serverTimestamp: 1, duplicate: false }) }),
      strict<SendLimiter>({ take: async () => undefined, ...over.limiter }),
      strict<TokenService>({ stillValid: async (_a, maxAge) => void tokenChecks.push(maxAge) }),
      config,
      new Metrics('gateway', false),
      new ManualClock(Date.now()),
    );
    return { svc, reads, submitted, tokenChecks };
  }

  it('refuses a sender device that is not in its account list, after one fresh read, and stores nothing', async () => {
    const { svc, reads, submitted } = service(() => new Map([[sender, [1, 2]], [recipient, [1]]]));
    await expect(svc.send(auth, request)).rejects.toMatchObject({ code: 'DEVICE_NOT_IN_LIST' });
    expect(reads).toEqual([false, true]);
    expect(submitted).toEqual([]);
  });

  it('a stale cache entry never rejects a good sender: the fresh list decides', async () => {
    const { svc, reads, submitted, tokenChecks } = service((fresh) => new Map([[sender, fresh ? [7] : [1]], [recipient, [1]]]));
    await expect(svc.send(auth, request)).resolves.toMatchObject({ duplicate: false });
    expect(reads).toEqual([false, true]);
    expect(submitted).toHaveLength(1);
    expect(tokenChecks).toEqual([5000]);
  });

  it('takes the shared limit on every send; a limited send reaches neither the relay nor a fresh read', async () => {
    const { svc, submitted, reads } = service(() => new Map([[sender, [7]], [recipient, [1]]]), {
      limiter: { take: async () => { throw new ApiError('RATE_LIMITED', 'slow down', { retryAfterS: 1 }); } },
    });
    await expect(svc.send(auth, request)).rejects.toMatchObject({ code: 'RATE_LIMITED', details: { retryAfterS: 1 } });
    expect(submitted).toEqual([]);
    expect(reads).toEqual([false]);
  });
});

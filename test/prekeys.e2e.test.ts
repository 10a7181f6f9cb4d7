import {
  PREKEY_KIND,
  b64uDecode,
  b64uEncode,
  createPreKeyRecord,
  generateSecretKey,
  parsePreKeyBundle,
  pub,
  verifyDeviceCertificate,
  verifyPreKeyRecord,
} from '@umbra/crypto';
import { TestStack, waitFor } from './support/harness';
import { ClientPool } from './support/clients';

describe('prekeys (key-directory)', () => {
  let stack: TestStack;
  const pool = new ClientPool(() => stack.origin);

  beforeAll(async () => {
    stack = await TestStack.start({ instances: { gateway: 2 }, env: { RATE_LIMIT_REGISTER_PER_IP_PER_HOUR: '1000' } });
  });
  afterAll(async () => {
    await pool.closeAll();
    await stack.stop();
  });

  const client = () => pool.registered();

  it('stores a full upload and serves verifiable bundles, each one-time key once', async () => {
    const bob = await client();
    const alice = await client();
    expect(await bob.client.refillPrekeys()).toEqual({ oneTimePreKeys: 100, oneTimeKemPreKeys: 100, signedPreKey: true, lastResortKemPreKey: true });
    const res = await alice.client.fetchBundles(bob.client.identity.accountIdText);
    expect(res.withoutKeys).toEqual([]);
    expect(res.bundles).toHaveLength(1);
    const bundle = parsePreKeyBundle(b64uDecode(res.bundles[0]!.bundle));
    verifyDeviceCertificate(bundle.certificate);
    const dik = bob.client.identity.device.dik;
    for (const rec of [bundle.signedPreKey, bundle.oneTimePreKey!, bundle.kemPreKey]) verifyPreKeyRecord(rec, dik);
    expect([bundle.signedPreKey.kind, bundle.oneTimePreKey!.kind, bundle.kemPreKey.kind]).toEqual([PREKEY_KIND.SPK, PREKEY_KIND.OPK, PREKEY_KIND.PQOPK]);
    expect(await bob.client.prekeys.secret(PREKEY_KIND.OPK, bundle.oneTimePreKey!.keyId)).toHaveLength(32);
    expect(await bob.client.api('GET', '/v1/keys/me')).toMatchObject({ oneTimePreKeys: 99, oneTimeKemPreKeys: 99 });
  });

  it('hands each one-time key to exactly one of many parallel fetchers, then falls back to the last-resort KEM key', async () => {
    const bob = await client();
    const upload = await bob.client.prekeys.buildUpload(undefined, 20);
    await bob.client.api('PUT', '/v1/keys', upload);
    const fetchers = await Promise.all(Array.from({ length: 30 }, () => client()));
    const results = await Promise.all(fetchers.map((f) => f.client.fetchBundles(bob.client.identity.accountIdText)));
    const bundles = results.map((r) => parsePreKeyBundle(b64uDecode(r.bundles[0]!.bundle)));
    const opkIds = bundles.filter((b) => b.oneTimePreKey).map((b) => b.oneTimePreKey!.keyId);
    const kemOneTime = bundles.filter((b) => b.kemPreKey.kind === PREKEY_KIND.PQOPK).map((b) => b.kemPreKey.keyId);
    expect(opkIds).toHaveLength(20);
    expect(new Set(opkIds).size).toBe(20);
    expect(kemOneTime).toHaveLength(20);
    expect(new Set(kemOneTime).size).toBe(20);
    expect(bundles.filter((b) => b.kemPreKey.kind === PREKEY_KIND.PQLR)).toHaveLength(10);
    expect(await bob.client.api('GET', '/v1/keys/me')).toMatchObject({ oneTimePreKeys: 0, oneTimeKemPreKeys: 0 });
  });

  it('limits the one-time keys one account can take from one device, without refusing bundles', async () => {
    const bob = await client();
    await bob.client.refillPrekeys();
    const mallory = await client();
    const bundles = [];
    for (let i = 0; i < 8; i++) bundles.push(parsePreKeyBundle(b64uDecode((await mallory.client.fetchBundles(bob.client.identity.accountIdText)).bundles[0]!.bundle)));
    expect(bundles.filter((b) => b.oneTimePreKey)).toHaveLength(5);
    expect(bundles.slice(5).every((b) => !b.oneTimePreKey && b.kemPreKey.kind === PREKEY_KIND.PQLR)).toBe(true);
  });

  it('tells a connected device its keys run low, and the SDK refills on its own', async () => {
    const bob = await client();
    await bob.client.api('PUT', '/v1/keys', await bob.client.prekeys.buildUpload(undefined, 21));
    // Published: connecting finds nothing due (no top-up on connect), so only "keys-low" can refill.
    await bob.client.prekeys.markUploaded();
    await bob.client.connect();
    const alice = await client();
    await alice.client.fetchBundles(bob.client.identity.accountIdText);
    await alice.client.fetchBundles(bob.client.identity.accountIdText);
    await waitFor(async () => (await bob.client.api<{ oneTimePreKeys: number }>('GET', '/v1/keys/me')).oneTimePreKeys === 100, 10_000, 'refill to 100');
    expect(await bob.client.api('GET', '/v1/keys/me')).toMatchObject({ oneTimePreKeys: 100, oneTimeKemPreKeys: 100 });
  });

  it('rejects records that are forged, misaddressed, of the wrong kind or too many', async () => {
    const bob = await client();
    const alice = await client();
    const id = bob.client.identity;
    const record = (over: { kind?: 1 | 2; deviceId?: number; sk?: Uint8Array; accountId?: Uint8Array } = {}) =>
      b64uEncode(
        createPreKeyRecord(
          { accountId: over.accountId ?? id.accountId, deviceId: over.deviceId ?? id.device.deviceId, kind: over.kind ?? PREKEY_KIND.OPK, keyId: 1, publicKey: pub(generateSecretKey()), createdAt: Date.now() },
          over.sk ?? id.device.dikSk,
        ),
      );
    const put = (body: unknown) => bob.client.api('PUT', '/v1/keys', body);
    await expect(put({ oneTimePreKeys: [record({ sk: generateSecretKey() })] })).rejects.toMatchObject({ code: 'BAD_SIGNATURE' });
    await expect(put({ oneTimePreKeys: [record({ deviceId: id.device.deviceId === 1 ? 2 : 1 })] })).rejects.toMatchObject({ code: 'BAD_PREKEY' });
    await expect(put({ oneTimePreKeys: [record({ accountId: alice.client.identity.accountId })] })).rejects.toMatchObject({ code: 'BAD_PREKEY' });
    await expect(put({ signedPreKey: record({ kind: PREKEY_KIND.OPK }) })).rejects.toMatchObject({ code: 'BAD_PREKEY' });
    await expect(put({ oneTimePreKeys: Array.from({ length: 101 }, () => record()) })).rejects.toMatchObject({ code: 'TOO_MANY_PREKEYS' });
    await expect(put({ oneTimePreKeys: ['AAAA'] })).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    expect(await bob.client.api('GET', '/v1/keys/me')).toEqual({ oneTimePreKeys: 0, oneTimeKemPreKeys: 0, signedPreKey: false, lastResortKemPreKey: false });
    const res = await alice.client.fetchBundles(id.accountIdText);
    expect(res).toMatchObject({ bundles: [], withoutKeys: [id.device.deviceId] });
  });
});

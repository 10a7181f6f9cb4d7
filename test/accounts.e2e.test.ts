import {
  DEVICE_FLAG_AIK_HOLDER,
  DEVICE_FLAG_HEADER_ENCRYPTION,
  SUITE_V1,
  b64uEncode,
  createDeviceCertificate,
  createSignedDeviceList,
  generateSecretKey,
  pub,
} from '@umbra/crypto';
import { MemoryStore, randomDeviceId, type LocalIdentity } from '@umbra/sdk';
import { TestStack, waitFor } from './support/harness';
import { ClientPool, openClient, toDevice, waitReceived } from './support/clients';


/** A second device for an existing identity, certified by the account key, and the list that adds it. */
function linkDevice(owner: LocalIdentity, listVersion: number): { identity: LocalIdentity; list: Uint8Array } {
  const dikSk = generateSecretKey();
  const dik = pub(dikSk);
  const deviceId = randomDeviceId();
  const now = Date.now();
  const certificate = createDeviceCertificate({ suite: SUITE_V1, aik: owner.aik, deviceId, dik, createdAt: now, flags: 0 }, owner.aikSk!, dikSk);
  const certs = [owner.device.certificate, certificate].sort((a, b) => new DataView(a.buffer, a.byteOffset).getUint32(35) - new DataView(b.buffer, b.byteOffset).getUint32(35));
  const list = createSignedDeviceList({ aik: owner.aik, listVersion, issuedAt: now, certificates: certs }, owner.aikSk!);
  const identity: LocalIdentity = { ...owner, aikSk: undefined, device: { deviceId, dikSk, dik, flags: 0, certificate }, deviceList: list, listVersion };
  delete identity.aikSk;
  return { identity, list };
}

describe('accounts, devices and handles', () => {
  let stack: TestStack;
  const pool = new ClientPool(() => stack.origin);

  beforeAll(async () => {
    stack = await TestStack.start({ instances: { gateway: 2, 'expiry-worker': 1 }, withS3: true });
  });
  afterAll(async () => {
    await pool.closeAll();
    await stack.stop();
  });

  const client = () => pool.registered();

  it('registers without phone or e-mail and looks the account up by id', async () => {
    const alice = await client();
    const bob = await client();
    const account = await bob.client.getAccount(alice.client.identity.accountIdText);
    expect(account.accountId).toBe(alice.client.identity.accountIdText);
    expect(account.accountId).toMatch(/^um1[02-9ac-hj-np-z]{58}$/);
    expect(account.listVersion).toBe(1);
    expect(account.deviceList).toBe(b64uEncode(alice.client.identity.deviceList));
    expect(account.devices).toEqual([{ deviceId: alice.client.identity.device.deviceId, flags: DEVICE_FLAG_AIK_HOLDER | DEVICE_FLAG_HEADER_ENCRYPTION, createdAt: expect.any(Number) }]);
    expect(account.handle).toBeNull();
  });

  it('authenticates again with a fresh challenge and refuses a second registration of the same key', async () => {
    const alice = await client();
    const token = await alice.client.authenticate();
    expect(token).toMatch(/^umb1\./);
    await expect(alice.client.register()).rejects.toMatchObject({ code: 'ACCOUNT_EXISTS', status: 409 });
  });

  it('claims unique handles, normalised, and finds accounts by them', async () => {
    const alice = await client();
    const bob = await client();
    const handle = `Alice_${Date.now().toString(36)}`;
    expect(await alice.client.claimHandle(handle)).toBe(handle.toLowerCase());
    const found = await bob.client.getAccountByHandle(handle.toUpperCase());
    expect(found.accountId).toBe(alice.client.identity.accountIdText);
    expect(found.handle).toBe(handle.toLowerCase());
    await expect(bob.client.claimHandle(handle.toLowerCase())).rejects.toMatchObject({ code: 'HANDLE_TAKEN', status: 409 });
    await alice.client.api('DELETE', '/v1/accounts/me/handle');
    await expect(bob.client.getAccountByHandle(handle)).rejects.toMatchObject({ code: 'HANDLE_NOT_FOUND' });
    expect(await bob.client.claimHandle(handle)).toBe(handle.toLowerCase());
  });

  it('adds a device with a newer signed list, and removing it revokes its token, socket and queue at once', async () => {
    const alice = await client();
    const bob = await client();
    const { identity: phone, list } = linkDevice(alice.client.identity, 2);
    await alice.client.publishDeviceList(list, 2);
    const second = await openClient(stack.origin, new MemoryStore());
    pool.track(second);
    await second.client.setIdentity(phone);
    await second.client.connect();
    let revoked = '';
    second.client.on('revoked', (r) => (revoked = r));

    // Bob must now address both of Alice's devices.
    await bob.client.connect();
    await expect(bob.client.send({ recipients: [toDevice(alice)] })).rejects.toMatchObject({ code: 'DEVICE_MISMATCH' });
    await bob.client.send({ recipients: [toDevice(alice), toDevice(second)] });
    await waitReceived(second, 1);

    const stale = createSignedDeviceList({ aik: alice.client.identity.aik, listVersion: 2, issuedAt: Date.now(), certificates: [alice.client.identity.device.certificate] }, alice.client.identity.aikSk!);
    await expect(alice.client.publishDeviceList(stale, 2)).rejects.toMatchObject({ code: 'DEVICE_LIST_STALE', status: 409 });

    const oldToken = await second.client.getToken();
    const v3 = createSignedDeviceList({ aik: alice.client.identity.aik, listVersion: 3, issuedAt: Date.now(), certificates: [alice.client.identity.device.certificate] }, alice.client.identity.aikSk!);
    const res = await alice.client.publishDeviceList(v3, 3);
    expect(res.removedDeviceIds).toEqual([phone.device.deviceId]);
    await waitFor(() => revoked === 'device_removed', 5000, 'revoked event');
    const direct = await fetch(`${stack.origin}/v1/accounts/${alice.client.identity.accountIdText}`, { headers: { authorization: `Bearer ${oldToken}` } });
    expect(direct.status).toBe(401);
    expect((await direct.json()).error.code).toBe('TOKEN_INVALID');
    await expect(second.client.authenticate()).rejects.toMatchObject({ code: 'DEVICE_NOT_IN_LIST' });
  });

  it('serves the OpenAPI document at the origin, covering every public route', async () => {
    const res = await fetch(`${stack.origin}/openapi.json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { openapi: string; paths: Record<string, Record<string, unknown>> };
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.paths['/v1/messages']).toHaveProperty('post');
    expect(doc.paths['/v1/accounts/{accountId}']).toHaveProperty('get');
  });

  it('exposes health, readiness and Prometheus metrics on every service', async () => {
    expect(new Set(stack.instances.map((i) => i.name))).toEqual(new Set(['gateway', 'key-directory', 'message-relay', 'media-upload', 'expiry-worker']));
    for (const inst of stack.instances) {
      expect((await fetch(`${inst.svc.url}/healthz`)).status).toBe(200);
      const ready = await fetch(`${inst.svc.url}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({ status: 'ok', checks: { postgres: 'ok', redis: 'ok' } });
      const metrics = await (await fetch(`${inst.svc.url}/metrics`)).text();
      expect(metrics).toContain('umbra_http_requests_total');
    }
  });
});

import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { b64uDecode, createDeviceCertificate, parseLookupResult, createSignedDeviceList, generateSecretKey, hexEncode, pub, SUITE_V1 } from '@umbra/crypto';
import { EncryptedStore, FileStore, MemoryStore, UmbraClient, type LocalIdentity } from '@umbra/sdk';
import { TestStack } from './support/harness';
import { Background, runUmbra } from './support/umbra-cli';

/**
 * The CLI side of key transparency (issue 15): `umbra kt verify`, `umbra kt monitor`, pinned trust
 * with --kt-config / UMBRA_KT_CONFIG (trust on first use with a warning otherwise) and `listen`
 * printing monitoring alerts, against a real stack.
 */

const tmp = (name: string) => mkdtempSync(path.join(tmpdir(), `umbra-kt-${name}-`));

let stack: TestStack;
let ktConfigFile: string;

beforeAll(async () => {
  stack = await TestStack.start({ env: { RATE_LIMIT_REGISTER_PER_IP_PER_HOUR: '1000', RATE_LIMIT_KT_LOOKUP_PER_IP_PER_MINUTE: '100000', KT_LOOKUP_FLOOR_MS: '0' } });
  // The operator publishes the log's config out of band; here it is the server's own.
  ktConfigFile = path.join(tmp('config'), 'kt.json');
  writeFileSync(ktConfigFile, await (await fetch(`${stack.origin}/v1/kt/config`)).text());
}, 60_000);
afterAll(() => stack?.stop());

const run = (home: string, ...args: string[]) => runUmbra(['--home', home, '--server', stack.origin, ...args]);
const ok = async (home: string, ...args: string[]) => {
  const res = await run(home, '--kt-config', ktConfigFile, ...args);
  if (res.code !== 0) throw new Error(`umbra ${args.join(' ')} exited ${res.code}: ${res.stderr}`);
  return res;
};

/** The identity a CLI home holds (its state is encrypted under storage.key beside it). */
async function identityOf(home: string): Promise<LocalIdentity> {
  const store = new EncryptedStore(new FileStore(path.join(home, 'state')), Buffer.from(readFileSync(path.join(home, 'storage.key'), 'utf8').trim(), 'hex'));
  const client = await UmbraClient.open({ serverUrl: stack.origin, store });
  return client.identity;
}

/** Someone holding a copy of the account key publishes a list with a device of their own. */
async function publishWithStolenKey(id: LocalIdentity, version: number): Promise<void> {
  const thief = await UmbraClient.open({ serverUrl: stack.origin, store: new MemoryStore() });
  await thief.setIdentity(id);
  const dikSk = generateSecretKey();
  const rogue = createDeviceCertificate({ suite: SUITE_V1, aik: id.aik, deviceId: 0x5eed_0000 + version, dik: pub(dikSk), createdAt: Date.now(), flags: 0 }, id.aikSk!, dikSk);
  const certs = [{ id: id.device.deviceId, bytes: id.device.certificate }, { id: 0x5eed_0000 + version, bytes: rogue }].sort((a, b) => a.id - b.id);
  await thief.publishDeviceList(createSignedDeviceList({ aik: id.aik, listVersion: version, issuedAt: Date.now(), certificates: certs.map((c) => c.bytes) }, id.aikSk!), version);
  // Returns once the list is in the log (the lookup waits for it), so the owner's next check sees it.
  expect((await thief.verifiedAccount(id.accountIdText)).deviceList.listVersion).toBe(version);
  await thief.close();
}

describe('umbra kt (CLI) against a running stack', () => {
  let a: string;
  let b: string;
  let bob: string;
  const handle = `kt_${Date.now().toString(36)}`;

  it('kt verify: an account and a @handle verify with pinned keys (human and --json); without pins a first-use warning', async () => {
    a = tmp('a');
    b = tmp('b');
    await ok(a, 'init');
    await ok(a, 'register');
    bob = (await ok(b, 'init')).stdout.trim().split(/\s+/).find((w) => w.startsWith('um1'))!;
    await ok(b, 'register', '--handle', handle);

    const human = await ok(a, 'kt', 'verify', `@${handle}`);
    expect(human.stderr).toBe('');
    expect(human.stdout).toMatch(new RegExp(`^@${handle} = ${bob}: verified in the key-transparency log\\n  device list version 1 \\(devices \\d+\\), leaf \\d+\\n  @${handle} bound to this account \\(claim version \\d+\\)\\n  tree size \\d+, signed .*, consistent with every tree head this device saw\\n$`));
    const json = JSON.parse((await ok(a, '--json', 'kt', 'verify', bob)).stdout) as Record<string, unknown>;
    expect(json).toMatchObject({ accountId: bob, listVersion: 1, verified: true, handle: null });
    expect(json.treeSize).toBeGreaterThan(0);
    expect(parseLookupResult(b64uDecode(json.evidence as string)).leafIndex).toBe(json.leafIndex);

    // No pins: the server's config is trusted on first use, once, with a warning; the environment variable pins as well.
    const c = tmp('c');
    await run(c, 'init');
    const tofu = await run(c, 'register');
    expect(tofu.code).toBe(0);
    expect(tofu.stderr).toMatch(/^umbra: warning: no pinned key-transparency config: trusting the server's .* on first use \(pin it with --kt-config FILE\)\n$/);
    expect(await run(c, 'kt', 'verify', bob)).toMatchObject({ code: 0, stderr: '' });
  }, 60_000);

  it('a pinned log key the server does not sign with: exit 1, KT_VERIFICATION_FAILED with the reason; a bad config file is refused up front', async () => {
    const wrong = path.join(tmp('wrong'), 'kt.json');
    const served = JSON.parse(readFileSync(ktConfigFile, 'utf8')) as Record<string, unknown>;
    writeFileSync(wrong, JSON.stringify({ ...served, logPublicKey: hexEncode(pub(generateSecretKey())) }));
    const e = tmp('e');
    await ok(e, 'init');
    await ok(e, 'register');
    const res = await run(e, '--kt-config', wrong, 'kt', 'verify', bob);
    expect(res.code).toBe(1);
    expect(res.stdout).toBe('');
    expect(res.stderr).toMatch(/^umbra: key transparency \(bad-sth-signature\): .* \(KT_VERIFICATION_FAILED\)\n$/);
    const asJson = await run(e, '--json', '--kt-config', wrong, 'send', bob, 'hi');
    expect(asJson.code).toBe(1);
    expect(JSON.parse(asJson.stderr)).toMatchObject({ error: { code: 'KT_VERIFICATION_FAILED', reason: 'bad-sth-signature' } });

    const broken = path.join(tmp('broken'), 'kt.json');
    writeFileSync(broken, JSON.stringify({ ...served, quorum: 7 }));
    const bad = await run(e, '--kt-config', broken, 'kt', 'verify', bob);
    expect(bad).toMatchObject({ code: 1, stdout: '' });
    expect(bad.stderr).toMatch(/quorum must be an integer/);
    // UMBRA_KT_CONFIG is read like --kt-config.
    const viaEnv = await runUmbra(['--home', e, '--server', stack.origin, 'kt', 'verify', bob], { env: { ...process.env, UMBRA_KT_CONFIG: broken } });
    expect(viaEnv.code).toBe(1);
    expect(viaEnv.stderr).toMatch(/quorum must be an integer/);
  }, 60_000);

  it('kt monitor is quiet for your own lists; listen and kt monitor report a list published with a stolen account key (exit 1)', async () => {
    const quiet = await ok(b, 'kt', 'monitor');
    expect(quiet.stdout).toMatch(new RegExp(`^no alerts: the log shows nothing for ${bob} that this device did not publish \\(tree size \\d+, signed .*\\)\\n$`));

    const id = await identityOf(b);
    await publishWithStolenKey(id, 2);
    const listen = Background.umbra(['--home', b, '--server', stack.origin, '--kt-config', ktConfigFile, 'listen']);
    try {
      await listen.until((x) => x.stderr.includes('KEY TRANSPARENCY ALERT'), 'listen to report the alert', 20_000);
      expect(listen.stderr).toMatch(/umbra: KEY TRANSPARENCY ALERT \(unknown-device-list\): the log holds device list version 2 \(devices .*\) that this device did not publish \[leaf \d+\]/);
    } finally {
      await listen.stop();
    }

    await publishWithStolenKey({ ...id, deviceList: new Uint8Array(0), listVersion: 2 }, 3);
    let res = await run(b, '--kt-config', ktConfigFile, '--json', 'kt', 'monitor');
    for (let i = 0; i < 20 && res.code === 0; i++) {
      await new Promise((r) => setTimeout(r, 250));
      res = await run(b, '--kt-config', ktConfigFile, '--json', 'kt', 'monitor');
    }
    expect(res.code).toBe(1);
    const out = JSON.parse(res.stdout) as { alerts: { kind: string; version: number; evidence: Record<string, string> }[] };
    expect(out.alerts.map((x) => [x.kind, x.version])).toEqual([['unknown-device-list', 3]]);
    expect(out.alerts[0]!.evidence.lookup).toBeDefined();
  }, 90_000);
});

import {
  b64uDecode,
  b64uEncode,
  createDeviceCertificate,
  createSignedDeviceList,
  createSignedHandleClaim,
  generateSecretKey,
  hexEncode,
  ktHandleLabel,
  parseLookupResult,
  parseSignedDeviceList,
  pub,
  SUITE_V1,
} from '@umbra/crypto';
import { KtVerificationError, MemoryStore, Messenger, UmbraClient, type KtAlert, type KtFailureReason, type KtTrustConfig, type ReceivedMessage } from '@umbra/sdk';
import type { AccountResponse, SendRequest } from '@umbra/protocol';
import { TestStack, waitFor } from './support/harness';
import { KtForger, KtTamper } from './support/kt-tamper';

/**
 * Key transparency against a lying server (issue 15): a real stack with the log in key-directory
 * and one witness (quorum 1); each attacked client talks to it through a tampering man in the middle
 * (test/support/kt-tamper.ts) that rewrites what "the server" returns, signing with the log key
 * (and, where the attack needs it, the witness key) as a compromised operator would. Every attack
 * must end in the typed KtVerificationError, and nothing may be encrypted to the keys it pushed.
 */

const logSk = generateSecretKey();
const witnessSk = generateSecretKey();
const forger = new KtForger(logSk, witnessSk);
const trust: KtTrustConfig = { logPublicKey: hexEncode(pub(logSk)), witnesses: [{ publicKey: hexEncode(pub(witnessSk)) }], quorum: 1 };
const DAY = 86_400_000;

let witnessStack: TestStack;
let stack: TestStack;

interface Person {
  client: UmbraClient;
  messenger: Messenger;
  store: MemoryStore;
  tamper: KtTamper;
  /** Every send request the client handed to its socket. */
  sent: SendRequest[];
  received: ReceivedMessage[];
  alerts: KtAlert[];
}

const people: Person[] = [];

async function person(opts: { register?: boolean } = {}): Promise<Person> {
  const store = new MemoryStore();
  const tamper = new KtTamper();
  const client = await UmbraClient.open({ serverUrl: stack.origin, store, fetch: tamper.fetch, kt: trust, ktInclusionWaitMs: 3000, sendTimeoutMs: 5000 });
  const sent: SendRequest[] = [];
  const send = client.send.bind(client);
  client.send = (input) => {
    sent.push(input as SendRequest);
    return send(input);
  };
  const alerts: KtAlert[] = [];
  client.on('kt-alert', (a) => alerts.push(a));
  const messenger = await Messenger.open(client, store);
  const received: ReceivedMessage[] = [];
  messenger.on('message', (m) => void received.push(m));
  const p = { client, messenger, store, tamper, sent, received, alerts };
  people.push(p);
  if (opts.register !== false) {
    await client.createIdentity();
    await client.register();
    await client.refillPrekeys();
    await client.connect();
  }
  return p;
}

async function ktReason(p: Promise<unknown>): Promise<KtFailureReason> {
  try {
    await p;
  } catch (err) {
    if (err instanceof KtVerificationError) return err.reason;
    throw err;
  }
  throw new Error('expected a KtVerificationError');
}

/** A certificate for a device the attacker controls, under the victim's AIK (as if the AIK signed it). */
function rogueList(victim: Person, version: number, extraDeviceId: number): Uint8Array {
  const id = victim.client.identity;
  const dikSk = generateSecretKey();
  const rogue = createDeviceCertificate({ suite: SUITE_V1, aik: id.aik, deviceId: extraDeviceId, dik: pub(dikSk), createdAt: Date.now(), flags: 0 }, id.aikSk!, dikSk);
  const certs = [{ id: id.device.deviceId, bytes: id.device.certificate }, { id: extraDeviceId, bytes: rogue }].sort((a, b) => a.id - b.id);
  return createSignedDeviceList({ aik: id.aik, listVersion: version, issuedAt: Date.now(), certificates: certs.map((c) => c.bytes) }, id.aikSk!);
}

/** Sessions the client holds with devices of `peer` (one per device it ever encrypted to). */
async function sessionDevices(p: Person, peer: Person): Promise<number[]> {
  const prefix = `session/${hexEncode(peer.client.identity.accountId)}/`;
  return (await p.store.keys(prefix)).map((k) => Number(k.slice(prefix.length))).sort();
}

/** The attacked send: it must fail with `reason`, build no send request, fetch no prekeys and start no session. */
async function expectRefusedSend(from: Person, to: Person, reason: KtFailureReason, forbiddenDevice?: number): Promise<KtVerificationError> {
  const mark = from.tamper.requests.length;
  const sentBefore = from.sent.length;
  let error: unknown;
  try {
    await from.messenger.sendText(to.client.identity.accountIdText, 'for your eyes only');
  } catch (err) {
    error = err;
  }
  expect(error).toBeInstanceOf(KtVerificationError);
  expect((error as KtVerificationError).reason).toBe(reason);
  expect(from.sent.length).toBe(sentBefore);
  expect(from.tamper.since(mark).filter((r) => r.includes('/v1/keys/'))).toEqual([]);
  if (forbiddenDevice !== undefined) expect(await sessionDevices(from, to)).not.toContain(forbiddenDevice);
  return error as KtVerificationError;
}

const accountPath = (p: Person) => new RegExp(`^/v1/accounts/${p.client.identity.accountIdText}$`);
const lookupPath = (p: Person) => new RegExp(`^/v1/kt/lookup\\?type=1&label=${b64uEncode(p.client.identity.accountId)}$`);

beforeAll(async () => {
  witnessStack = await TestStack.start({
    instances: { 'key-directory': 0, 'message-relay': 0, gateway: 0, witness: 1 },
    env: { WITNESS_SIGNING_KEY: hexEncode(witnessSk), WITNESS_LOG_PUBLIC_KEY: hexEncode(pub(logSk)) },
  });
  const witnessUrl = witnessStack.of('witness')[0]!.svc.url;
  stack = await TestStack.start({
    env: {
      KT_LOG_SIGNING_KEY: hexEncode(logSk),
      KT_WITNESSES: `${witnessUrl}|${hexEncode(pub(witnessSk))}`,
      KT_WITNESS_QUORUM: '1',
      KT_SEQUENCE_INTERVAL_MS: '100',
      KT_STH_INTERVAL_MS: '300',
      KT_LOOKUP_FLOOR_MS: '0',
      RATE_LIMIT_KT_LOOKUP_PER_IP_PER_MINUTE: '1000000',
    },
  });
}, 60_000);

afterAll(async () => {
  for (const p of people.splice(0)) await p.client.close().catch(() => undefined);
  await stack?.stop();
  await witnessStack?.stop();
});

describe('key transparency e2e: clients that check, against a server that lies', () => {
  let alice: Person;
  let bob: Person;
  /** Bob's v1 lookup as Alice verified it: a real, old, signed answer to replay later. */
  let bobV1Lookup: string;
  let bobV1List: string;
  let bobV2List: string;
  let bobHandle: string;
  /** Bob's device added in v2 and removed in v3. */
  const removedDevice = 0x6eed_0001;

  it('honest path: register, change devices, claim a handle; every lookup verifies, messages flow, monitoring is quiet', async () => {
    alice = await person();
    bob = await person();
    // Alice looks Bob up while he is at list version 1: the lookup she keeps is evidence for later.
    await alice.messenger.sendText(bob.client.identity.accountIdText, 'hello v1');
    bobV1Lookup = (await alice.client.kt.evidence(1, bob.client.identity.accountId))!;
    bobV1List = b64uEncode(bob.client.identity.deviceList);
    expect(parseLookupResult(b64uDecode(bobV1Lookup)).leaf.version).toBe(1);

    // Bob adds a device (v2), then removes it again (v3).
    const v2 = rogueList(bob, 2, removedDevice);
    await bob.client.publishDeviceList(v2, 2);
    bobV2List = b64uEncode(v2);
    const v3 = createSignedDeviceList({ aik: bob.client.identity.aik, listVersion: 3, issuedAt: Date.now(), certificates: [bob.client.identity.device.certificate] }, bob.client.identity.aikSk!);
    await bob.client.publishDeviceList(v3, 3);
    bobHandle = `bob_${hexEncode(bob.client.identity.accountId).slice(0, 8)}`;
    await bob.client.claimHandle(bobHandle);

    const byHandle = await alice.client.verifiedAccountByHandle(bobHandle);
    expect(byHandle.account.accountId).toBe(bob.client.identity.accountIdText);
    expect(byHandle.deviceList.listVersion).toBe(3);
    expect(byHandle.handleClaim?.handle).toBe(bobHandle);
    await alice.messenger.sendText(bob.client.identity.accountIdText, 'hello v3');
    await waitFor(() => bob.received.some((m) => m.content.text === 'hello v3'), 10_000, 'Bob receives');
    expect(await sessionDevices(alice, bob)).not.toContain(removedDevice);

    expect(await bob.client.monitorKt()).toEqual([]);
    expect(await alice.client.monitorKt()).toEqual([]);
    expect([...alice.alerts, ...bob.alerts]).toEqual([]);
  }, 60_000);

  it('a device list that is not in the log (a split view) is refused: not-in-log', async () => {
    const carol = await person();
    const rogue = rogueList(bob, 4, 0x6eed_0002);
    carol.tamper.rewrite(accountPath(bob), (body) => ({ ...(body as AccountResponse), listVersion: 4, deviceList: b64uEncode(rogue) }));
    const started = Date.now();
    await expectRefusedSend(carol, bob, 'not-in-log', 0x6eed_0002);
    expect(Date.now() - started).toBeLessThan(15_000);
  }, 30_000);

  it('a removed device re-added by the server (an older list served) is refused: version-rollback', async () => {
    const dave = await person();
    expect(parseSignedDeviceList(b64uDecode(bobV2List)).devices.map((d) => d.deviceId)).toContain(removedDevice);
    dave.tamper.rewrite(accountPath(bob), (body) => ({ ...(body as AccountResponse), listVersion: 2, deviceList: bobV2List }));
    const err = await expectRefusedSend(dave, bob, 'version-rollback', removedDevice);
    expect(err.message).toMatch(/version 2.*version 3/);
  }, 30_000);

  it('a rollback to an older tree (a replayed, once-valid lookup) is refused: version-rollback', async () => {
    const erin = await person();
    // Erin has seen the current tree (she verified Alice), then the server answers for Bob with the old tree and old list.
    await erin.client.verifiedAccount(alice.client.identity.accountIdText);
    erin.tamper.rewrite(accountPath(bob), (body) => ({ ...(body as AccountResponse), listVersion: 1, deviceList: bobV1List }));
    erin.tamper.answer(lookupPath(bob), () => ({ result: bobV1Lookup }));
    const err = await expectRefusedSend(erin, bob, 'version-rollback');
    expect(err.evidence.previousSth).toBeDefined();
  }, 30_000);

  it('a tree head older than 24 h (validly signed and cosigned) is refused: stale-sth', async () => {
    const frank = await person();
    frank.tamper.rewrite(lookupPath(bob), (body) => ({ result: forger.restamp((body as { result: string }).result, Date.now() - DAY - 60_000) }));
    await expectRefusedSend(frank, bob, 'stale-sth');
  }, 30_000);

  it('a handle bound to another account is refused: wrong-account', async () => {
    const mallory = await person();
    const gina = await person();
    const claim = createSignedHandleClaim({ handle: bobHandle, accountId: mallory.client.identity.accountId, claimVersion: 1, issuedAt: Date.now() }, mallory.client.identity.aikSk!);
    const malloryAccount = await mallory.client.getAccount(mallory.client.identity.accountIdText);
    gina.tamper.answer(new RegExp(`^/v1/accounts/by-handle/${bobHandle}$`), () => ({ ...malloryAccount, handle: bobHandle, handleClaim: b64uEncode(claim) }));
    // "send @bob_…": the handle is resolved first; the send never starts.
    const mark = gina.tamper.requests.length;
    const sendToHandle = async () => gina.messenger.sendText((await gina.client.getAccountByHandle(bobHandle)).accountId, 'for Bob only');
    expect(await ktReason(sendToHandle())).toBe('wrong-account');
    expect(await sessionDevices(gina, mallory)).toEqual([]);
    expect(gina.sent).toEqual([]);
    expect(gina.tamper.since(mark).filter((r) => r.includes('/v1/keys/'))).toEqual([]);
    // The honest answer still verifies for her.
    gina.tamper.clear();
    expect((await gina.client.getAccountByHandle(bobHandle)).accountId).toBe(bob.client.identity.accountIdText);
  }, 30_000);

  it('a device list published with a stolen account key is caught by the owner\'s monitoring (kt-alert)', async () => {
    // The thief holds Bob's whole identity (AIK and a device key) in another store and publishes v4 with its own device.
    const thief = await person({ register: false });
    await thief.client.setIdentity(bob.client.identity);
    const v4 = rogueList(bob, 4, 0x6eed_0003);
    await thief.client.publishDeviceList(v4, 4);
    // Bob's device, monitoring its own label, sees a list it did not publish once it is logged.
    let alerts: KtAlert[] = [];
    await waitFor(async () => (alerts = await bob.client.monitorKt()).length > 0, 10_000, 'the monitor to see the logged v4');
    expect(alerts.map((a) => a.kind)).toEqual(['unknown-device-list']);
    expect(alerts[0]!.version).toBe(4);
    expect(bob.alerts.map((a) => a.kind)).toEqual(['unknown-device-list']);
  }, 30_000);

  it('a fork: the witness refuses to cosign it (KT_FORK_DETECTED); without a cosignature the client refuses it, and a cosigned fork of a tree it saw is inconsistent', async () => {
    const hank = await person();
    await hank.client.verifiedAccount(alice.client.identity.accountIdText);
    const seen = (await hank.client.kt.lastSth())!;
    const rogue = rogueList(alice, 99, 0x6eed_0004);
    const leaf = { type: 1 as const, label: alice.client.identity.accountId, version: 99, statement: rogue };

    // A forked, bigger tree signed by the log key, without a witness: insufficient-cosignatures.
    const big = forger.fork(seen.treeSize + 1, leaf, { cosign: false, timestamp: Date.now() });
    hank.tamper.rewrite(accountPath(alice), (body) => ({ ...(body as AccountResponse), listVersion: 99, deviceList: b64uEncode(rogue) }));
    hank.tamper.answer(lookupPath(alice), () => ({ result: b64uEncode(big.lookup.bytes) }));
    await expectRefusedSend(hank, alice, 'insufficient-cosignatures', 0x6eed_0004);

    // With the witness key as well (a colluding witness): the same size as the tree Hank saw, another root.
    const same = forger.fork(seen.treeSize, leaf, { cosign: true, timestamp: Date.now() });
    hank.tamper.clear();
    hank.tamper.rewrite(accountPath(alice), (body) => ({ ...(body as AccountResponse), listVersion: 99, deviceList: b64uEncode(rogue) }));
    hank.tamper.answer(lookupPath(alice), () => ({ result: b64uEncode(same.lookup.bytes) }));
    const err = await expectRefusedSend(hank, alice, 'inconsistent', 0x6eed_0004);
    expect(err.evidence.previousSth).toBeDefined();
    expect((await hank.client.kt.incidents()).map((i) => i.reason)).toEqual(['insufficient-cosignatures', 'inconsistent']);

    // The honest witness, shown the fork (it last cosigned the real tree), refuses it. Last in this file: it then stops cosigning this log.
    const witnessUrl = witnessStack.of('witness')[0]!.svc.url;
    const state = (await (await fetch(`${witnessUrl}/v1/witness/state`)).json()) as { treeSize: number };
    const fork = forger.fork(state.treeSize + 1, leaf, { cosign: false, timestamp: Date.now() });
    const res = await fetch(`${witnessUrl}/v1/witness/add-sth`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sth: b64uEncode(fork.sth.bytes), oldSize: state.treeSize, proof: b64uEncode(KtForger.consistency(state.treeSize, fork.leaves)) }),
    });
    expect(res.status).toBe(422);
    const body = (await res.json()) as { error?: { code?: string }; code?: string };
    expect(body.error?.code ?? body.code).toBe('KT_FORK_DETECTED');
  }, 30_000);
});

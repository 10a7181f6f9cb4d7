import {
  b64uDecode,
  b64uEncode,
  parseLookupResult,
  createDeviceCertificate,
  createLookupResult,
  createSignedDeviceList,
  createSignedHandleClaim,
  generateSecretKey,
  inclusionProof,
  ktHandleLabel,
  parseSignedDeviceList,
  pub,
  sha256,
  SUITE_V1,
  type SignedDeviceList,
} from '@umbra/crypto';
import { HttpClient } from '../http.client';
import { createIdentity, type LocalIdentity } from '../identity';
import { MemoryStore } from '../store';
import { KtClient, type KtEvent } from './kt.client';
import { KtVerificationError, type KtFailureReason } from './kt.errors';
import { FakeKtLog } from './kt.testing';
import { ktPins } from './kt.verifier';

const NOW = 1_800_000_000_000;

function setup(log: FakeKtLog, opts: { overrides?: Parameters<FakeKtLog['fetch']>[0]; trust?: boolean; store?: MemoryStore; waitMs?: number } = {}) {
  const { fetch, calls } = log.fetch(opts.overrides);
  const events: KtEvent[] = [];
  const store = opts.store ?? new MemoryStore();
  const kt = new KtClient({
    http: new HttpClient('http://kt.test', fetch), store, now: () => NOW, emit: (e) => events.push(e), inclusionWaitMs: opts.waitMs ?? 300,
    ...(opts.trust === false ? {} : { trust: log.trust() }),
  });
  return { kt, events, calls, store };
}

function listOf(id: LocalIdentity, version: number, extraDevices = 0): SignedDeviceList {
  const certs = [id.device.certificate];
  for (let i = 0; i < extraDevices; i++) {
    const dikSk = generateSecretKey();
    certs.push(createDeviceCertificate({ suite: SUITE_V1, aik: id.aik, deviceId: 0x7fff_0000 + i + version * 16, dik: pub(dikSk), createdAt: NOW, flags: 0 }, id.aikSk!, dikSk));
  }
  certs.sort((a, b) => new DataView(a.buffer, a.byteOffset + 35, 4).getUint32(0) - new DataView(b.buffer, b.byteOffset + 35, 4).getUint32(0));
  return parseSignedDeviceList(createSignedDeviceList({ aik: id.aik, listVersion: version, issuedAt: NOW, certificates: certs }, id.aikSk!));
}

async function reason(p: Promise<unknown>): Promise<KtFailureReason> {
  try {
    await p;
  } catch (err) {
    if (err instanceof KtVerificationError) return err.reason;
    throw err;
  }
  throw new Error('expected a KtVerificationError');
}

describe('KT client: §12 checks (1)–(6) on forged structures', () => {
  let log: FakeKtLog;
  let alice: LocalIdentity;
  let list1: SignedDeviceList;
  beforeEach(() => {
    log = new FakeKtLog(() => NOW - 1000);
    alice = createIdentity(NOW);
    list1 = parseSignedDeviceList(alice.deviceList);
    log.append(1, createIdentity(NOW).accountId, 1, createIdentity(NOW).deviceList);
    log.append(1, alice.accountId, 1, alice.deviceList);
  });

  it('an honest lookup verifies, keeps the signed lookup as evidence and stores the STH', async () => {
    const { kt } = setup(log);
    const list = await kt.verifyDeviceList(alice.accountId, list1);
    expect(list.listVersion).toBe(1);
    const kept = parseLookupResult(b64uDecode((await kt.evidence(1, alice.accountId))!));
    expect([kept.leafIndex, kept.statement]).toEqual([1, alice.deviceList]);
    expect((await kt.lastSth())?.treeSize).toBe(2);
  });

  it('the same list again is not looked up again; a grown tree is checked for consistency', async () => {
    const { kt, calls } = setup(log);
    await kt.verifyDeviceList(alice.accountId, list1);
    await kt.verifyDeviceList(alice.accountId, list1);
    expect(calls.lookup).toBe(1);
    const list2 = listOf(alice, 2, 1);
    for (let i = 0; i < 5; i++) log.append(1, createIdentity(NOW).accountId, 1, createIdentity(NOW).deviceList);
    log.append(1, alice.accountId, 2, list2.bytes);
    await kt.verifyDeviceList(alice.accountId, list2);
    expect(calls.consistency).toBe(1);
    expect((await kt.lastSth())?.treeSize).toBe(8);
  });

  it('(1) an STH signed by another key, or without the witness quorum, is refused', async () => {
    const other = generateSecretKey();
    const forged = setup(log, { overrides: { lookup: () => ({ result: b64uEncode(log.lookupAt(1, log.sth(2, { logSk: other }))) }) } });
    expect(await reason(forged.kt.verifyDeviceList(alice.accountId, list1))).toBe('bad-sth-signature');
    const uncosigned = setup(log, { overrides: { lookup: () => ({ result: b64uEncode(log.lookupAt(1, log.sth(2, { cosign: false }))) }) } });
    expect(await reason(uncosigned.kt.verifyDeviceList(alice.accountId, list1))).toBe('insufficient-cosignatures');
  });

  it('(2) an STH older than 24 h is refused, even when properly signed and cosigned', async () => {
    const { kt } = setup(log, { overrides: { lookup: () => ({ result: b64uEncode(log.lookupAt(1, log.sth(2, { timestamp: NOW - 86_400_001 }))) }) } });
    expect(await reason(kt.verifyDeviceList(alice.accountId, list1))).toBe('stale-sth');
  });

  it('(3) a fork (same size, other root), a smaller tree, and a bad consistency proof are refused, with evidence kept', async () => {
    const store = new MemoryStore();
    await setup(log, { store }).kt.verifyDeviceList(alice.accountId, list1);
    // A second tree of the same size with another root, validly signed and cosigned: equivocation.
    const bob = createIdentity(NOW);
    const forkLog = new FakeKtLog(() => NOW - 500);
    Object.assign(forkLog, { logSk: log.logSk, logPk: log.logPk, witnessSk: log.witnessSk, witnessPk: log.witnessPk });
    forkLog.append(1, bob.accountId, 1, bob.deviceList);
    forkLog.append(1, bob.accountId, 2, bob.deviceList);
    const { kt } = setup(log, { store, overrides: { lookup: () => ({ result: b64uEncode(forkLog.lookupAt(0)) }) } });
    expect(await reason(kt.verifyDeviceList(bob.accountId, parseSignedDeviceList(bob.deviceList)))).toBe('inconsistent');
    const incidents = await kt.incidents();
    expect(incidents.at(-1)?.reason).toBe('inconsistent');
    expect(incidents.at(-1)?.evidence.previousSth).toBeDefined();

    // Rollback to a smaller tree.
    const small = setup(log, { store, overrides: { lookup: () => ({ result: b64uEncode(log.lookupAt(0, log.sth(1))) }) } });
    const carol = log.statements[0]!;
    expect(await reason(small.kt.verifyDeviceList(parseSignedDeviceList(carol).accountId, parseSignedDeviceList(carol)))).toBe('version-rollback');

    // A grown tree whose consistency proof does not verify.
    const dave = createIdentity(NOW);
    log.append(1, dave.accountId, 1, dave.deviceList);
    const badProof = setup(log, { store, overrides: { consistency: () => ({ proof: b64uEncode(log.consistency(1, 3)) }) } });
    expect(await reason(badProof.kt.verifyDeviceList(dave.accountId, parseSignedDeviceList(dave.deviceList)))).toBe('inconsistent');
  });

  it('(4) a wrong inclusion path, a lookup for another label, or a bad lookup signature are refused', async () => {
    const sth = log.sth();
    const wrongPath = createLookupResult(log.logSk, { leafBytes: log.leaves[1]!, leafIndex: 1, sth, inclusion: inclusionProof(0, log.leaves), statement: log.statements[1]! });
    expect(await reason(setup(log, { overrides: { lookup: () => ({ result: b64uEncode(wrongPath.bytes) }) } }).kt.verifyDeviceList(alice.accountId, list1))).toBe('bad-inclusion');
    expect(await reason(setup(log, { overrides: { lookup: () => ({ result: b64uEncode(log.lookupAt(0)) }) } }).kt.verifyDeviceList(alice.accountId, list1))).toBe('bad-inclusion');
    const badSig = log.lookupAt(1);
    badSig[badSig.length - 1]! ^= 1;
    expect(await reason(setup(log, { overrides: { lookup: () => ({ result: b64uEncode(badSig) }) } }).kt.verifyDeviceList(alice.accountId, list1))).toBe('bad-inclusion');
  });

  it('(5) a statement that does not hash to the leaf, or a leaf whose version differs from the list, is refused', async () => {
    const other = listOf(alice, 1, 1);
    const swapped = log.lookupAt(1, log.sth(), other.bytes);
    expect(await reason(setup(log, { overrides: { lookup: () => ({ result: b64uEncode(swapped) }) } }).kt.verifyDeviceList(alice.accountId, list1))).toBe('statement-mismatch');
    const log2 = new FakeKtLog(() => NOW - 1000);
    log2.append(1, alice.accountId, 7, alice.deviceList);
    expect(await reason(setup(log2).kt.verifyDeviceList(alice.accountId, list1))).toBe('statement-mismatch');
    // A leaf under Alice's label whose list is signed by another account key.
    const mallory = createIdentity(NOW);
    const log4 = new FakeKtLog(() => NOW - 1000);
    log4.append(1, alice.accountId, 1, mallory.deviceList);
    expect(await reason(setup(log4).kt.verifyDeviceList(alice.accountId, parseSignedDeviceList(mallory.deviceList)))).toBe('wrong-account');
  });

  it('a served list older than the logged one is a rollback (a removed device re-added); the same version with other bytes is equivocation', async () => {
    const list2 = listOf(alice, 2, 0);
    log.append(1, alice.accountId, 2, list2.bytes);
    expect(await reason(setup(log).kt.verifyDeviceList(alice.accountId, list1))).toBe('version-rollback');
    const twin = listOf(alice, 2, 1);
    expect(await reason(setup(log).kt.verifyDeviceList(alice.accountId, twin))).toBe('statement-mismatch');
  });

  it('a list below the version already verified is refused without asking the log', async () => {
    const store = new MemoryStore();
    const list2 = listOf(alice, 2, 1);
    log.append(1, alice.accountId, 2, list2.bytes);
    await setup(log, { store }).kt.verifyDeviceList(alice.accountId, list2);
    const again = setup(log, { store });
    expect(await reason(again.kt.verifyDeviceList(alice.accountId, list1))).toBe('version-rollback');
    expect(again.calls.lookup).toBeUndefined();
  });

  it('a statement not yet in the log is waited for (bounded), then fails not-in-log', async () => {
    const bob = createIdentity(NOW);
    const bobList = parseSignedDeviceList(bob.deviceList);
    const started = Date.now();
    expect(await reason(setup(log, { waitMs: 400 }).kt.verifyDeviceList(bob.accountId, bobList))).toBe('not-in-log');
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(Date.now() - started).toBeLessThan(3000);
    // Logged while the client waits: it succeeds.
    const { kt } = setup(log, { waitMs: 3000 });
    setTimeout(() => log.append(1, bob.accountId, 1, bob.deviceList), 250);
    expect((await kt.verifyDeviceList(bob.accountId, bobList)).listVersion).toBe(1);
  });

  it('handles: the logged claim must bind the handle to the account the server named', async () => {
    const claim = createSignedHandleClaim({ handle: 'alice', accountId: alice.accountId, claimVersion: 5, issuedAt: NOW }, alice.aikSk!);
    log.append(2, ktHandleLabel('alice'), 5, claim);
    const { kt } = setup(log);
    expect((await kt.verifyHandle('alice', alice.aik, claim)).claimVersion).toBe(5);
    const mallory = createIdentity(NOW);
    // The server says @alice is Mallory's: Mallory's served claim is not in the log, the logged one is Alice's.
    const malloryClaim = createSignedHandleClaim({ handle: 'alice', accountId: mallory.accountId, claimVersion: 5, issuedAt: NOW }, mallory.aikSk!);
    expect(await reason(setup(log).kt.verifyHandle('alice', mallory.aik, malloryClaim))).toBe('wrong-account');
    // A claim of a newer version than the logged one is waited for (it may not be sequenced yet).
    const newer = createSignedHandleClaim({ handle: 'alice', accountId: mallory.accountId, claimVersion: 9, issuedAt: NOW }, mallory.aikSk!);
    expect(await reason(setup(log).kt.verifyHandle('alice', mallory.aik, newer))).toBe('not-in-log');
    expect(await reason(setup(log).kt.verifyHandle('alice', mallory.aik, undefined))).toBe('wrong-account');
    // The log's newest binding is Mallory's (the monitor of Alice alarms, see below): Alice's older claim no longer holds.
    log.append(2, ktHandleLabel('alice'), 6, createSignedHandleClaim({ handle: 'alice', accountId: mallory.accountId, claimVersion: 6, issuedAt: NOW }, mallory.aikSk!));
    expect(await reason(setup(log).kt.verifyHandle('alice', alice.aik, claim))).toBe('wrong-account');
  });

  it('trust on first use: the served config is pinned and a warning emitted once', async () => {
    const store = new MemoryStore();
    const first = setup(log, { trust: false, store });
    await first.kt.verifyDeviceList(alice.accountId, list1);
    expect(first.events.filter((e) => e.event === 'kt-warning')).toHaveLength(1);
    // Later the server serves another log key: the pinned one still applies, so its STHs fail.
    const evil = new FakeKtLog(() => NOW - 1000);
    evil.append(1, alice.accountId, 1, alice.deviceList);
    const second = setup(evil, { trust: false, store });
    expect(await reason(second.kt.verifyDeviceList(alice.accountId, listOf(alice, 1, 0)))).toBe('bad-sth-signature');
    expect(second.events).toHaveLength(0);
  });

  it('trust config validation rejects bad keys and quorums', () => {
    expect(() => ktPins({ logPublicKey: 'zz', witnesses: [], quorum: 0 })).toThrow(/logPublicKey/);
    expect(() => ktPins({ ...log.trust(), quorum: 2 })).toThrow(/quorum/);
    expect(ktPins(log.trust()).quorum).toBe(1);
  });

  it('monitoring: quiet for lists this device published; alerts for an unknown list and for its handle bound elsewhere', async () => {
    const store = new MemoryStore();
    const { kt, events } = setup(log, { store });
    await kt.notePublished(alice.deviceList, 1);
    const claim = createSignedHandleClaim({ handle: 'alice', accountId: alice.accountId, claimVersion: 5, issuedAt: NOW }, alice.aikSk!);
    log.append(2, ktHandleLabel('alice'), 5, claim);
    const own = { accountId: alice.accountId, aik: alice.aik, listVersion: 1, deviceList: alice.deviceList, handle: 'alice' };
    expect(await kt.monitor(own)).toEqual([]);
    const sneaky = listOf(alice, 2, 1);
    log.append(1, alice.accountId, 2, sneaky.bytes);
    const mallory = createIdentity(NOW);
    log.append(2, ktHandleLabel('alice'), 6, createSignedHandleClaim({ handle: 'alice', accountId: mallory.accountId, claimVersion: 6, issuedAt: NOW }, mallory.aikSk!));
    const alerts = await kt.monitor(own);
    expect(alerts.map((a) => a.kind)).toEqual(['unknown-device-list', 'handle-bound-elsewhere']);
    expect(events.filter((e) => e.event === 'kt-alert')).toHaveLength(2);
    // Already-seen leaves are not reported twice.
    expect(await kt.monitor(own)).toEqual([]);
  });

  it('monitoring follows full pages, and a version logged again in a later run is an alert', async () => {
    log.monitorPage = 2;
    const store = new MemoryStore();
    const { kt, calls } = setup(log, { store });
    const own = { accountId: alice.accountId, aik: alice.aik, listVersion: 5, deviceList: alice.deviceList };
    for (let v = 2; v <= 5; v++) {
      const list = listOf(alice, v, 0);
      await kt.notePublished(list.bytes, v);
      log.append(1, alice.accountId, v, list.bytes);
    }
    await kt.notePublished(alice.deviceList, 1);
    expect(await kt.monitor(own)).toEqual([]);
    expect(calls.monitor).toBe(4);
    // The log shows version 3 again (a replayed statement): versions must strictly increase.
    log.append(1, alice.accountId, 3, log.statements[log.latest(1, alice.accountId) - 2]!);
    expect((await kt.monitor(own)).map((a) => [a.kind, a.version])).toEqual([['bad-statement', 3]]);
  });

  it('monitoring: a logged statement that does not verify is an alert', async () => {
    const { kt } = setup(log);
    log.append(1, alice.accountId, 2, new Uint8Array([1, 2, 3]));
    const alerts = await kt.monitor({ accountId: alice.accountId, aik: alice.aik, listVersion: 1, deviceList: alice.deviceList });
    expect(alerts.map((a) => a.kind)).toEqual(['bad-statement']);
    expect(sha256(alice.deviceList)).toBeDefined();
  });
});

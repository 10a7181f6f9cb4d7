import {
  accountIdOf,
  b64uDecode,
  b64uEncode,
  bytesEqual,
  hexEncode,
  ktHandleLabel,
  parseSignedHandleClaim,
  parseSth,
  sha256,
  type LookupResult,
  type SignedDeviceList,
  type SignedHandleClaim,
  type SignedTreeHead,
} from '@umbra/crypto';
import { UmbraApiError } from '../errors';
import type { HttpClient } from '../http.client';
import { Mutex } from '../mutex';
import { LocalState, stateWrite } from '../state/local.state';
import { STATE_KEYS } from '../state/state.keys';
import type { KeyValueStore } from '../store';
import { KtVerificationError } from './kt.errors';
import {
  checkConsistency,
  checkDeviceListStatement,
  checkHandleStatement,
  checkInclusion,
  checkServedHandleClaim,
  checkParsedSth,
  checkSth,
  ktPins,
  parseLookup,
  type KtPins,
  type KtTrustConfig,
  type StoredTreeHead,
} from './kt.verifier';

/** Something the log shows about this account that its own devices did not do (§12 monitoring). */
export interface KtAlert {
  kind: 'unknown-device-list' | 'handle-bound-elsewhere' | 'bad-statement' | 'verification-failed';
  type: 1 | 2;
  /** Leaf index in the log, when one leaf shows it. */
  leafIndex?: number;
  version?: number;
  message: string;
  /** Signed structures that prove it (base64url). */
  evidence: Record<string, string>;
}

/** A failed check, kept with its evidence. */
export interface KtIncident {
  at: number;
  reason: string;
  message: string;
  evidence: Record<string, string>;
}

export type KtEvent = { event: 'kt-alert'; alert: KtAlert } | { event: 'kt-warning'; message: string };

export interface KtClientOptions {
  http: HttpClient;
  store: KeyValueStore;
  now: () => number;
  /** Pinned trust; without it the config the server serves is pinned on first use (a kt-warning says so). */
  trust?: KtTrustConfig;
  /**
   * How long a lookup waits for a statement the server already serves to appear in the log (it is
   * sequenced asynchronously, within the log's MMD; seconds in practice) before failing not-in-log.
   */
  inclusionWaitMs?: number;
  emit: (e: KtEvent) => void;
}

/** Default wait for a fresh statement to be logged: several sequencing + cosigning rounds. */
export const KT_INCLUSION_WAIT_MS = 15_000;
const POLL_START_MS = 100;
const POLL_MAX_MS = 1000;
const MAX_INCIDENTS = 20;
const MONITOR_MAX_PAGES = 100;

/** Where monitoring of a label stopped: the next leaf index to ask for and the highest version seen. */
export interface MonitorMark {
  next: number;
  version: number;
}

export interface LabelRecord {
  version: number;
  valueHash: string;
  leafIndex: number;
}

export interface StoredSth {
  sth: string;
}

/** What this device knows it published, for monitoring its own labels. */
export interface OwnLabels {
  accountId: Uint8Array;
  aik: Uint8Array;
  /** The current list this device knows (its own identity's). */
  listVersion: number;
  deviceList: Uint8Array;
  handle?: string | null;
}

/**
 * The client side of key transparency (PROTOCOL.md §12): every device list and handle binding the
 * SDK uses is first checked against the log — pinned log key and witness quorum, STH age,
 * consistency with the last STH this device saw, inclusion, and the statement itself — and the
 * signed lookup is kept as evidence. Failures throw KtVerificationError; nothing falls back.
 */
export class KtClient {
  private pinsValue: Promise<KtPins> | undefined;
  private readonly sthLock = new Mutex();
  private readonly now: () => number;
  private readonly state: LocalState;

  constructor(private readonly opts: KtClientOptions) {
    this.now = opts.now;
    this.state = new LocalState(opts.store);
  }

  /** The pins: the given trust config, else the one pinned on first use, else the server's (then pinned). */
  pins(): Promise<KtPins> {
    this.pinsValue ??= (async () => {
      if (this.opts.trust) return ktPins(this.opts.trust);
      const stored = await this.state.get(STATE_KEYS.ktTrust);
      if (stored) return ktPins(stored);
      const config = await this.opts.http.request<KtTrustConfig>('GET', '/v1/kt/config');
      const pins = ktPins(config);
      const pinned: KtTrustConfig = { logPublicKey: config.logPublicKey, witnesses: config.witnesses.map((w) => ({ publicKey: w.publicKey })), quorum: config.quorum, ...(config.maxSthAgeMs ? { maxSthAgeMs: config.maxSthAgeMs } : {}) };
      await this.state.set(STATE_KEYS.ktTrust, pinned);
      this.opts.emit({
        event: 'kt-warning',
        message: `no pinned key-transparency config: trusting the server's (log ${config.logPublicKey.slice(0, 16)}…, ${config.witnesses.length} witness(es), quorum ${config.quorum}) on first use`,
      });
      return pins;
    })();
    this.pinsValue.catch(() => (this.pinsValue = undefined));
    return this.pinsValue;
  }

  /** The last STH this device verified, if any. */
  async lastSth(): Promise<StoredTreeHead | undefined> {
    const stored = await this.state.get(STATE_KEYS.ktSth);
    if (!stored) return undefined;
    const sth = parseSth(b64uDecode(stored.sth));
    return { treeSize: sth.head.treeSize, root: sth.head.root, timestamp: sth.head.timestamp, bytes: sth.bytes };
  }

  /** The kept signed lookup for a label (check 6), base64url. */
  evidence(type: 1 | 2, label: Uint8Array): Promise<string | undefined> {
    return this.state.get(STATE_KEYS.ktEvidence(type, hexEncode(label)));
  }

  /** Failures seen (newest last), each with its evidence, for a report. */
  async incidents(): Promise<KtIncident[]> {
    return (await this.state.get(STATE_KEYS.ktIncidents)) ?? [];
  }

  /** Fetches and verifies the current STH (checks 1–3) and makes it the stored one. */
  async currentSth(): Promise<SignedTreeHead> {
    const pins = await this.pins();
    const res = await this.opts.http.request<{ sth: string }>('GET', '/v1/kt/sth');
    return this.record(async () => this.acceptSth(checkSth(b64uDecode(res.sth), pins, this.now())));
  }

  /**
   * Checks (1)–(3) for an STH: signatures, age, then consistency with the stored one (fetching a
   * proof when the tree grew); the newer head is stored.
   */
  private async acceptSth(sth: SignedTreeHead): Promise<SignedTreeHead> {
    const pins = await this.pins();
    checkParsedSth(sth, pins, this.now());
    return this.sthLock.run(async () => {
      const last = await this.lastSth();
      let proof: Uint8Array | undefined;
      if (last && last.treeSize > 0 && sth.head.treeSize > last.treeSize) {
        const res = await this.opts.http.request<{ proof: string }>('GET', `/v1/kt/consistency?first=${last.treeSize}&second=${sth.head.treeSize}`);
        proof = b64uDecode(res.proof);
      }
      checkConsistency(last, sth, proof);
      if (!last || sth.head.treeSize > last.treeSize || (sth.head.treeSize === last.treeSize && sth.head.timestamp > last.timestamp)) {
        await this.state.set(STATE_KEYS.ktSth, { sth: b64uEncode(sth.bytes) });
      }
      return sth;
    });
  }

  /** Runs a check; a KtVerificationError is recorded with its evidence before it is thrown on. */
  private async record<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof KtVerificationError) {
        const list = await this.incidents().catch((): KtIncident[] => []);
        list.push({ at: this.now(), reason: err.reason, message: err.message, evidence: { ...err.evidence } });
        await this.state.set(STATE_KEYS.ktIncidents, list.slice(-MAX_INCIDENTS)).catch(() => undefined);
      }
      throw err;
    }
  }

  /** One lookup, checks (1)–(4); undefined when the log has no leaf for the label yet. */
  private async lookup(type: 1 | 2, label: Uint8Array): Promise<LookupResult | undefined> {
    const pins = await this.pins();
    let raw: { result: string };
    try {
      raw = await this.opts.http.request<{ result: string }>('GET', `/v1/kt/lookup?type=${type}&label=${b64uEncode(label)}`);
    } catch (err) {
      if (err instanceof UmbraApiError && err.status === 404 && (err.code as string) === 'KT_LABEL_NOT_FOUND') return undefined;
      throw err;
    }
    const res = parseLookup(b64uDecode(raw.result));
    await this.acceptSth(res.sth);
    checkInclusion(res, pins, { type, label });
    return res;
  }

  /**
   * Polls until the log holds the statement the server served (`valueHash`, `version`), up to the
   * inclusion wait. A newer logged version than the served one means the server served an old
   * statement (rollback); the same version with another hash is equivocation.
   */
  private async waitForStatement(type: 1 | 2, label: Uint8Array, served: Uint8Array, servedVersion: number, conflict?: (logged: LookupResult) => void): Promise<LookupResult> {
    const deadline = this.now() + (this.opts.inclusionWaitMs ?? KT_INCLUSION_WAIT_MS);
    const valueHash = sha256(served);
    let delay = POLL_START_MS;
    let last: LookupResult | undefined;
    for (;;) {
      try {
        last = await this.lookup(type, label);
      } catch (err) {
        // The log being busy or away is not evidence: keep polling, and report it as it is at the end.
        if (!(err instanceof UmbraApiError && err.retryable) || this.now() + delay > deadline) throw err;
      }
      if (last) {
        const evidence = { lookup: b64uEncode(last.bytes), served: b64uEncode(served) };
        if (bytesEqual(last.leaf.valueHash, valueHash)) return last;
        conflict?.(last);
        if (last.leaf.version > servedVersion) {
          throw new KtVerificationError('version-rollback', `the server served version ${servedVersion}, the log already holds version ${last.leaf.version}`, evidence);
        }
        if (last.leaf.version === servedVersion) throw new KtVerificationError('statement-mismatch', `the log holds another statement with version ${servedVersion} (equivocation)`, evidence);
      }
      if (this.now() + delay > deadline) {
        throw new KtVerificationError(
          'not-in-log',
          `version ${servedVersion} is not in the log after ${this.opts.inclusionWaitMs ?? KT_INCLUSION_WAIT_MS} ms${last ? ` (latest logged: version ${last.leaf.version})` : ' (no leaf for this label)'}`,
          { served: b64uEncode(served), ...(last ? { lookup: b64uEncode(last.bytes) } : {}) },
        );
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, POLL_MAX_MS);
    }
  }

  private labelRecord(type: 1 | 2, label: Uint8Array): Promise<LabelRecord | undefined> {
    return this.state.get(STATE_KEYS.ktLabel(type, hexEncode(label)));
  }

  private async keep(type: 1 | 2, label: Uint8Array, res: LookupResult): Promise<void> {
    const hex = hexEncode(label);
    const rec: LabelRecord = { version: res.leaf.version, valueHash: hexEncode(res.leaf.valueHash), leafIndex: res.leafIndex };
    await this.state.batch([stateWrite(STATE_KEYS.ktLabel(type, hex), rec), stateWrite(STATE_KEYS.ktEvidence(type, hex), b64uEncode(res.bytes))]);
  }

  /**
   * Checks a device list the server served for `accountId` against the log (checks 1–6). A list
   * already verified (same bytes) is not looked up again.
   */
  verifyDeviceList(accountId: Uint8Array, served: SignedDeviceList): Promise<SignedDeviceList> {
    return this.record(async () => {
      const cached = await this.labelRecord(1, accountId);
      if (cached && cached.valueHash === hexEncode(sha256(served.bytes)) && cached.version === served.listVersion) return served;
      if (cached && served.listVersion < cached.version) {
        throw new KtVerificationError('version-rollback', `device list version ${served.listVersion} is below the ${cached.version} already verified`, { served: b64uEncode(served.bytes) });
      }
      const res = await this.waitForStatement(1, accountId, served.bytes, served.listVersion);
      const list = checkDeviceListStatement(res, cached?.version);
      if (!bytesEqual(list.accountId, accountId)) throw new KtVerificationError('wrong-account', 'device list of another account', { lookup: b64uEncode(res.bytes) });
      await this.keep(1, accountId, res);
      return list;
    });
  }

  /**
   * Checks that the log binds `handle` to the account with `accountAik` through the served claim
   * (or, without one, through the latest logged claim).
   */
  verifyHandle(handle: string, accountAik: Uint8Array, servedClaim: Uint8Array | undefined): Promise<SignedHandleClaim> {
    return this.record(async () => {
      const label = ktHandleLabel(handle);
      const cached = await this.labelRecord(2, label);
      let res: LookupResult;
      if (servedClaim) {
        const version = servedVersion(servedClaim);
        if (cached && cached.valueHash === hexEncode(sha256(servedClaim))) {
          return checkServedHandleClaim(servedClaim, handle, accountAik);
        }
        // The log's latest binding (not older than the served claim) names another account: no need to wait.
        const conflict = (logged: LookupResult) => {
          if (logged.leaf.version < version) return;
          let owner: Uint8Array | undefined;
          try {
            owner = parseSignedHandleClaim(logged.statement).accountId;
          } catch {
            return;
          }
          if (!bytesEqual(owner, accountIdOf(accountAik))) {
            throw new KtVerificationError('wrong-account', `the log binds @${handle} to another account than the server named`, { lookup: b64uEncode(logged.bytes), served: b64uEncode(servedClaim) });
          }
        };
        res = await this.waitForStatement(2, label, servedClaim, version, conflict);
      } else {
        const found = await this.lookup(2, label);
        if (!found) throw new KtVerificationError('not-in-log', `no binding of @${handle} in the log`);
        res = found;
      }
      const claim = checkHandleStatement(res, handle, accountAik, cached?.version);
      await this.keep(2, label, res);
      return claim;
    });
  }

  /** Marks a device list as published by this device, for monitoring. */
  async notePublished(list: Uint8Array, version: number): Promise<void> {
    await this.state.set(STATE_KEYS.ktPublished(version), hexEncode(sha256(list)));
  }

  /**
   * §12 monitoring of this account's own labels: every leaf since the last check, with inclusion
   * proofs under one STH. Alerts (also emitted as kt-alert): a device list this device did not
   * publish (or that does not verify), the handle bound to another account. Returns them.
   */
  async monitor(own: OwnLabels): Promise<KtAlert[]> {
    const alerts: KtAlert[] = [];
    const alert = (a: KtAlert) => {
      alerts.push(a);
      this.opts.emit({ event: 'kt-alert', alert: a });
    };
    try {
      await this.record(async () => {
        await this.monitorLabel(1, own.accountId, own, alert);
        if (own.handle) await this.monitorLabel(2, ktHandleLabel(own.handle), own, alert);
      });
    } catch (err) {
      if (!(err instanceof KtVerificationError)) throw err;
      alert({ kind: 'verification-failed', type: 1, message: err.message, evidence: { ...err.evidence } });
    }
    return alerts;
  }

  private async monitorLabel(type: 1 | 2, label: Uint8Array, own: OwnLabels, alert: (a: KtAlert) => void): Promise<void> {
    const pins = await this.pins();
    const hex = hexEncode(label);
    const saved = (await this.state.get(STATE_KEYS.ktMonitor(type, hex))) ?? { next: 0, version: -1 };
    let { next, version: lastVersion } = saved;
    // The server pages its answer (at most KT_LIMITS.MONITOR_MAX_RESULTS): ask again from the next index until nothing is new.
    for (let page = 0; page < MONITOR_MAX_PAGES; page++) {
      const since = next;
      const raw = await this.opts.http.request<{ results: string[]; sth: string }>('GET', `/v1/kt/monitor?type=${type}&label=${b64uEncode(label)}&since=${since}`);
      const sth = await this.acceptSth(checkSth(b64uDecode(raw.sth), pins, this.now()));
      for (const b of raw.results) {
        const res = parseLookup(b64uDecode(b));
        if (!bytesEqual(res.sth.tbs, sth.tbs)) throw new KtVerificationError('bad-inclusion', 'monitor result under another STH', { lookup: b, sth: raw.sth });
        if (res.leafIndex < since) throw new KtVerificationError('bad-inclusion', `monitor returned leaf ${res.leafIndex} before ${since}`, { lookup: b });
        checkInclusion(res, pins, { type, label });
        const evidence = { lookup: b };
        // Independent-monitor rule of §12: per-label versions strictly increase, across pages and runs.
        if (res.leaf.version <= lastVersion) alert({ kind: 'bad-statement', type, leafIndex: res.leafIndex, version: res.leaf.version, message: `label versions do not increase at leaf ${res.leafIndex} (${res.leaf.version} after ${lastVersion})`, evidence });
        lastVersion = Math.max(lastVersion, res.leaf.version);
        next = Math.max(next, res.leafIndex + 1);
        if (type === 1) await this.judgeDeviceList(res, own, alert);
        else this.judgeHandle(res, own, alert);
      }
      await this.state.set(STATE_KEYS.ktMonitor(type, hex), { next, version: lastVersion });
      if (raw.results.length === 0) return;
    }
  }

  private async judgeDeviceList(res: LookupResult, own: OwnLabels, alert: (a: KtAlert) => void): Promise<void> {
    const evidence = { lookup: b64uEncode(res.bytes) };
    let list: SignedDeviceList;
    try {
      list = checkDeviceListStatement(res, undefined);
    } catch (err) {
      alert({ kind: 'bad-statement', type: 1, leafIndex: res.leafIndex, version: res.leaf.version, message: `logged device list for this account does not verify: ${(err as Error).message}`, evidence });
      return;
    }
    const hash = hexEncode(sha256(list.bytes));
    const published = await this.state.get(STATE_KEYS.ktPublished(list.listVersion));
    const known = published === hash || (list.listVersion === own.listVersion && bytesEqual(list.bytes, own.deviceList));
    if (known) return;
    if (published !== undefined || list.listVersion >= own.listVersion) {
      alert({
        kind: 'unknown-device-list', type: 1, leafIndex: res.leafIndex, version: list.listVersion,
        message: `the log holds device list version ${list.listVersion} (devices ${list.devices.map((d) => d.deviceId).join(', ')}) that this device did not publish`, evidence,
      });
    }
    // An older version this device never saw (published before it was linked) cannot be judged here.
  }

  private judgeHandle(res: LookupResult, own: OwnLabels, alert: (a: KtAlert) => void): void {
    const evidence = { lookup: b64uEncode(res.bytes) };
    try {
      checkHandleStatement(res, own.handle!, own.aik, undefined);
    } catch (err) {
      const wrong = err instanceof KtVerificationError && err.reason === 'wrong-account';
      alert({
        kind: wrong ? 'handle-bound-elsewhere' : 'bad-statement', type: 2, leafIndex: res.leafIndex, version: res.leaf.version,
        message: wrong ? `the log binds @${own.handle} to another account (leaf ${res.leafIndex})` : `logged claim of @${own.handle} does not verify: ${(err as Error).message}`, evidence,
      });
    }
  }
}

function servedVersion(claimBytes: Uint8Array): number {
  try {
    return parseSignedHandleClaim(claimBytes).claimVersion;
  } catch (err) {
    throw new KtVerificationError('statement-mismatch', `served handle claim is malformed (${(err as Error).message})`, { served: b64uEncode(claimBytes) });
  }
}

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { canonicalHandle, decodeAccountId, CryptoError } from '@umbra/crypto';
import { EncryptedStore, FileStore, Umbra, UmbraApiError, UmbraClient, ktPins, type CallsFrontDoorOptions, type FetchFn, type IdentityChange, type KtTrustConfig, type LocalIdentity } from '@umbra/sdk';
import { nodeFiles, type FileSource } from '@umbra/sdk/node';
import type { Globals } from './args';
import { CliError } from './cli-error';

/** Why a connection failed, in the words of the issue a user would search for. */
function reason(err: unknown): string {
  const code = (err as { cause?: { code?: string } }).cause?.code ?? (err as { code?: string }).code;
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'unknown host';
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET':
      return 'connection reset';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'host unreachable';
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'ETIMEDOUT':
      return 'connection timed out';
    case 'CERT_HAS_EXPIRED':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
      return `TLS certificate rejected (${code})`;
    default: {
      const cause = (err as { cause?: unknown }).cause;
      // fetch refuses the ports browsers block (1, 7, 9, 25, …) before connecting.
      if (cause instanceof Error && cause.message === 'bad port') return 'a port fetch refuses to use (pick another)';
      return code ?? (cause instanceof Error ? cause.message : err instanceof Error ? err.message : String(err));
    }
  }
}

/** HttpClient prints String(err) after "cannot reach <origin>: "; this makes that the plain reason. */
class Unreachable extends Error {
  override toString(): string {
    return this.message;
  }
}

/** How long a silent origin's timeout is remembered (a long-running `listen` must recover after it). */
export const SILENT_ORIGIN_MEMORY_MS = 30_000;

/**
 * fetch with an answer deadline (until the response headers arrive). When the origin did not
 * answer in time, further requests within SILENT_ORIGIN_MEMORY_MS fail at once instead of waiting
 * again. Refused or reset connections are not remembered: they fail fast anyway, and a `listen`
 * that saw one during an outage must not keep failing after the server is back.
 */
export function fetchWithTimeout(timeoutMs: number, now: () => number = Date.now): FetchFn {
  let silentUntil = 0;
  let silence = '';
  return async (input, init) => {
    if (now() < silentUntil) throw new Unreachable(silence);
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), timeoutMs);
    try {
      const res = await globalThis.fetch(input, { ...init, signal: ctrl.signal });
      silentUntil = 0;
      return res;
    } catch (err) {
      if (!ctrl.signal.aborted) throw new Unreachable(reason(err));
      silence = `no answer within ${timeoutMs / 1000} s`;
      silentUntil = now() + SILENT_ORIGIN_MEMORY_MS;
      throw new Unreachable(silence);
    } finally {
      clearTimeout(timer);
    }
  };
}

/** A pinned key-transparency config file, checked before anything is looked up. */
function readKtConfig(file: string): KtTrustConfig {
  let config: KtTrustConfig;
  try {
    config = JSON.parse(readFileSync(file, 'utf8')) as KtTrustConfig;
  } catch (err) {
    throw new CliError(`cannot read the key-transparency config ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  try {
    ktPins(config);
  } catch (err) {
    throw new CliError(`${file}: ${(err as Error).message}`);
  }
  return config;
}

/** The device storage key: on a phone it lives in the OS keystore; here in a 0600 file beside the state. */
function storageKey(home: string): Uint8Array {
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const file = path.join(home, 'storage.key');
  if (!existsSync(file)) writeFileSync(file, randomBytes(32).toString('hex'), { mode: 0o600 });
  return Buffer.from(readFileSync(file, 'utf8').trim(), 'hex');
}

export interface Peer {
  accountId: string;
  /** How the user wrote it (@handle or the id), for messages. */
  label: string;
  /** The canonical handle, when the user named the peer by one. */
  handle?: string;
}

/** The SDK's front door with the Node file transport: what the commands use. */
export type CliUmbra = Umbra<string | FileSource, string, void>;

/** One device's state and its connection to the server, for the length of one command. */
export class Session {
  private umbraValue: Promise<CliUmbra> | undefined;

  private constructor(
    readonly globals: Globals,
    readonly client: UmbraClient,
    readonly store: EncryptedStore,
    private readonly fetch: FetchFn,
  ) {}

  static async open(globals: Globals): Promise<Session> {
    const store = new EncryptedStore(new FileStore(path.join(globals.home, 'state')), storageKey(globals.home));
    const fetch = fetchWithTimeout(globals.timeoutMs);
    const kt = globals.ktConfig ? readKtConfig(globals.ktConfig) : undefined;
    const client = await UmbraClient.open({ serverUrl: globals.server, store, fetch, ...(kt ? { kt } : {}) });
    client.on('kt-warning', (message) => process.stderr.write(`umbra: warning: ${message} (pin it with --kt-config FILE)\n`));
    return new Session(globals, client, store, fetch);
  }

  get identity(): LocalIdentity {
    if (!this.client.hasIdentity) throw new CliError(`no identity here (${this.globals.home}): run umbra init, or umbra link to add this device to an account`);
    return this.client.identity;
  }

  /**
   * The front door over this session's client (one per session: it decrypts what the client
   * receives); `calls` (given on the first use) makes this device take part in calls.
   */
  umbra(opts: { calls?: CallsFrontDoorOptions } = {}): Promise<CliUmbra> {
    void this.identity;
    // Interrupted uploads keep their state here; sending the same file again resumes.
    this.umbraValue ??= Umbra.over(this.client, { store: this.store, files: nodeFiles({ stateDir: path.join(this.globals.home, 'uploads') }), ...(opts.calls ? { calls: opts.calls } : {}) });
    return this.umbraValue;
  }

  /** Opens the socket, or fails after the timeout with the reason instead of retrying forever. */
  async connect(): Promise<void> {
    void this.identity;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let probe: ReturnType<typeof setTimeout> | undefined;
    const failed = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new CliError(`cannot reach ${this.globals.server}: no connection within ${this.globals.timeoutMs / 1000} s`)), this.globals.timeoutMs);
      // The socket retries quietly; a plain HTTP request tells why it cannot connect (refused, unknown host…).
      probe = setTimeout(() => {
        if (this.client.connected) return;
        this.fetch(`${this.globals.server}/`, { method: 'GET' }).then(
          (res) => void res.body?.cancel(),
          (err: unknown) => reject(new CliError(`cannot reach ${this.globals.server}: ${err instanceof Error ? err.message : String(err)}`)),
        );
      }, 300);
    });
    try {
      await Promise.race([this.client.connect(), failed]);
    } finally {
      clearTimeout(timer);
      clearTimeout(probe);
    }
  }

  /**
   * Runs a socket operation, failing once the connection has been down for the whole timeout
   * (the SDK would retry forever). A message already in the outbox is sent by the next command.
   */
  async whileConnected<T>(op: Promise<T>, onLost: string): Promise<T> {
    let poll: ReturnType<typeof setInterval> | undefined;
    const lost = new Promise<never>((_, reject) => {
      let downSince: number | undefined;
      poll = setInterval(() => {
        if (this.client.connected) downSince = undefined;
        else if (downSince === undefined) downSince = Date.now();
        else if (Date.now() - downSince >= this.globals.timeoutMs) reject(new CliError(`lost the connection to ${this.globals.server}; ${onLost}`));
      }, 200);
    });
    try {
      return await Promise.race([op, lost]);
    } finally {
      clearInterval(poll);
    }
  }

  /** An account id or @handle as the user typed it, checked before anything is sent. */
  async resolvePeer(text: string): Promise<Peer> {
    if (text.startsWith('@')) {
      let handle: string;
      try {
        handle = canonicalHandle(text.slice(1));
      } catch {
        throw new CliError(`not a handle: ${text} (handles are 3–32 letters, digits or _)`);
      }
      try {
        return { accountId: (await this.client.getAccountByHandle(handle)).accountId, label: `@${handle}`, handle };
      } catch (err) {
        if (err instanceof UmbraApiError && err.code === 'HANDLE_NOT_FOUND') throw new CliError(`no account has the handle @${handle}`);
        throw err;
      }
    }
    try {
      decodeAccountId(text);
    } catch (err) {
      if (err instanceof CryptoError) throw new CliError(`not an account id or @handle: ${text} (account ids start with um1, handles with @)`);
      throw err;
    }
    return { accountId: text, label: text };
  }

  /**
   * The change the SDK recorded when the peer's handle started naming this account instead of the
   * one it named before (§11), while the user has not acknowledged it.
   */
  async identityChange(peer: Peer): Promise<IdentityChange | undefined> {
    if (peer.handle === undefined) return undefined;
    const pending = await this.client.contacts.pendingChanges(peer.accountId);
    return pending.find((c) => c.handle === peer.handle && c.current === peer.accountId);
  }

  async close(): Promise<void> {
    if (this.umbraValue) await (await this.umbraValue).close();
    else await this.client.close();
  }
}

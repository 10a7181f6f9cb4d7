import { b64uDecode, b64uEncode, createAuthResponse } from '@umbra/crypto';
import { ROUTES, solvePow, type ChallengeResponse, type PowChallengeResponse, type TokenResponse } from '@umbra/protocol';
import { UmbraApiError } from '../errors';
import type { HttpClient } from '../http.client';
import { createIdentity, deserializeIdentity, serializeIdentity, type LocalIdentity } from '../identity';
import type { KtClient } from '../kt/kt.client';
import type { LocalState } from '../state/local.state';
import { STATE_KEYS } from '../state/state.keys';

/** The bearer token as stored. */
export interface StoredToken {
  token: string;
  expiresAt: number;
}

/** Finds a registration proof of work (solvePow's contract); a browser runs it in a Web Worker. */
export type PowSolver = (challenge: Uint8Array, accountId: Uint8Array, difficulty: number) => Promise<Uint8Array>;

/** A token this close to its expiry is replaced before use. */
const TOKEN_REFRESH_MARGIN_MS = 60_000;

/** This device's identity and its session with the server: registration, tokens, authenticated REST. */
export class DeviceSession {
  private identityValue: LocalIdentity | undefined;
  private token: StoredToken | undefined;

  constructor(
    private readonly http: HttpClient,
    private readonly state: LocalState,
    private readonly kt: KtClient,
    private readonly serverUrl: string,
    private readonly now: () => number,
  ) {}

  get origin(): string {
    return new URL(this.serverUrl).origin;
  }

  /** Loads the identity and token the store holds, if any. */
  async load(): Promise<void> {
    const stored = await this.state.get(STATE_KEYS.identity);
    if (stored) this.identityValue = deserializeIdentity(stored);
    this.token = await this.state.get(STATE_KEYS.token);
  }

  get identity(): LocalIdentity {
    if (!this.identityValue) throw new Error('no identity: call createIdentity() first');
    return this.identityValue;
  }

  get hasIdentity(): boolean {
    return this.identityValue !== undefined;
  }

  async createIdentity(): Promise<LocalIdentity> {
    if (this.identityValue) throw new Error('this store already holds an identity');
    const identity = createIdentity(this.now());
    this.identityValue = identity;
    await this.state.set(STATE_KEYS.identity, serializeIdentity(identity));
    return identity;
  }

  async setIdentity(identity: LocalIdentity): Promise<void> {
    this.identityValue = identity;
    await this.state.set(STATE_KEYS.identity, serializeIdentity(identity));
  }

  async register(opts: { solvePow?: PowSolver }): Promise<TokenResponse> {
    const id = this.identity;
    const pow = await this.http.request<PowChallengeResponse>('GET', ROUTES.powChallenge.path);
    const solution = await (opts.solvePow ?? solvePow)(b64uDecode(pow.challenge), id.accountId, pow.difficulty);
    const authResponse = await this.signAuthResponse();
    const res = await this.http.request<TokenResponse>('POST', ROUTES.register.path, {
      body: { deviceList: b64uEncode(id.deviceList), authResponse, pow: { challenge: pow.challenge, solution: b64uEncode(solution) } },
    });
    await this.saveToken(res);
    await this.kt.notePublished(id.deviceList, id.listVersion);
    // Trust on first use happens at the first contact (a kt-warning now, not in the middle of a later
    // command); when it fails here, the first lookup pins instead, and fails loudly if it cannot.
    await this.kt.pins().catch(() => undefined);
    return res;
  }

  async authenticate(): Promise<string> {
    const authResponse = await this.signAuthResponse();
    const res = await this.http.request<TokenResponse>('POST', ROUTES.authToken.path, { body: { authResponse } });
    await this.saveToken(res);
    return res.token;
  }

  async getToken(): Promise<string> {
    if (this.token && this.token.expiresAt - TOKEN_REFRESH_MARGIN_MS > this.now()) return this.token.token;
    return this.authenticate();
  }

  /** The token held now, without refreshing it (the socket's handshake). */
  get currentToken(): string | undefined {
    return this.token?.token;
  }

  /** The server rejected the token: the next call authenticates again. */
  dropToken(): void {
    this.token = undefined;
  }

  async api<T>(method: string, path: string, body?: unknown): Promise<T> {
    try {
      return await this.http.request<T>(method, path, { body, token: await this.getToken() });
    } catch (err) {
      if (err instanceof UmbraApiError && (err.code === 'TOKEN_INVALID' || err.code === 'TOKEN_EXPIRED')) {
        this.token = undefined;
        return this.http.request<T>(method, path, { body, token: await this.authenticate() });
      }
      throw err;
    }
  }

  private async signAuthResponse(): Promise<string> {
    const id = this.identity;
    const challenge = await this.http.request<ChallengeResponse>('GET', ROUTES.authChallenge.path);
    const bytes = createAuthResponse(
      { origin: this.origin, accountId: id.accountId, deviceId: id.device.deviceId, nonce: b64uDecode(challenge.nonce), clientTime: this.now() },
      id.device.dikSk,
    );
    return b64uEncode(bytes);
  }

  private async saveToken(res: TokenResponse): Promise<void> {
    this.token = { token: res.token, expiresAt: res.expiresAt };
    await this.state.set(STATE_KEYS.token, this.token);
  }
}

import type { ErrorBody, ErrorCode } from '@umbra/protocol';
import { UmbraApiError } from './errors';

export type FetchFn = typeof fetch;

const GET_TRIES = 3;

/** JSON over fetch against the public origin; errors become UmbraApiError with the server's code. */
export class HttpClient {
  constructor(
    readonly baseUrl: string,
    private readonly fetchFn: FetchFn = (...args) => globalThis.fetch(...args),
  ) {}

  async request<T>(method: string, path: string, opts: { body?: unknown; token?: string } = {}): Promise<T> {
    const headers: Record<string, string> = {};
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    const init = { method, headers, ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}) };
    // A kept-alive socket the server (or a proxy) closed fails its next use, and a pool can hold
    // several such sockets after an outage: a GET is safe to repeat, each try retiring one.
    const tries = method === 'GET' ? GET_TRIES : 1;
    let res: Response | undefined;
    for (let attempt = 1; !res; attempt++) {
      try {
        res = await this.fetchFn(`${this.baseUrl}${path}`, init);
      } catch (err) {
        if (attempt >= tries) throw new UmbraApiError(0, 'UNAVAILABLE', `cannot reach ${this.baseUrl}: ${String(err)}`);
      }
    }
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const error = (json as ErrorBody | undefined)?.error;
      throw new UmbraApiError(res.status, (error?.code ?? (res.status >= 500 ? 'UNAVAILABLE' : 'VALIDATION_FAILED')) as ErrorCode, error?.message ?? res.statusText, error?.details);
    }
    return json as T;
  }
}

import { z } from 'zod';
import * as S from './schemas';
import * as AT from './attachments';
import * as KT from './kt';
import { ERROR_STATUS, type ErrorCode } from './errors';
import { LIMITS, RATE_LIMITS } from './limits';

export type ServiceName = 'gateway' | 'key-directory' | 'message-relay' | 'media-upload' | 'expiry-worker' | 'witness';

export interface RouteDef {
  method: 'get' | 'post' | 'put' | 'delete';
  /** Path on the public origin, with `{param}` placeholders. */
  path: string;
  service: ServiceName;
  auth: boolean;
  summary: string;
  params?: z.ZodType;
  query?: z.ZodType;
  body?: z.ZodType;
  /** Largest JSON body, checked before it is read; LIMITS.DEFAULT_HTTP_BODY_BYTES when absent. */
  maxBodyBytes?: number;
  response?: z.ZodType;
  status: number;
  errors: ErrorCode[];
}

const AUTH_ERRORS: ErrorCode[] = ['UNAUTHENTICATED', 'TOKEN_INVALID', 'TOKEN_EXPIRED'];
const BODY_ERRORS: ErrorCode[] = ['VALIDATION_FAILED', 'MALFORMED_JSON', 'BAD_ENCODING', 'PAYLOAD_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE'];

/** Every public REST route. Controllers use these schemas; /openapi.json is generated from this table; a test checks the two agree. */
export const ROUTES = {
  authChallenge: {
    method: 'get', path: '/v1/auth/challenge', service: 'gateway', auth: false, status: 200,
    summary: `A single-use nonce for an AuthResponse, valid ${LIMITS.AUTH_CHALLENGE_TTL_S} s (PROTOCOL.md §1).`,
    response: S.ChallengeResponseSchema, errors: ['RATE_LIMITED'],
  },
  authToken: {
    method: 'post', path: '/v1/auth/token', service: 'gateway', auth: false, status: 200,
    summary: 'Exchange a signed AuthResponse for an opaque bearer token.',
    body: S.TokenRequestSchema, response: S.TokenResponseSchema,
    errors: [...BODY_ERRORS, 'BAD_AUTH_RESPONSE', 'UNSUPPORTED_SUITE', 'AUTH_CHALLENGE_INVALID', 'WRONG_ORIGIN', 'CLOCK_SKEW', 'ACCOUNT_NOT_FOUND', 'DEVICE_NOT_IN_LIST', 'BAD_SIGNATURE', 'RATE_LIMITED'],
  },
  sendMessage: {
    method: 'post', path: '/v1/messages', service: 'gateway', auth: true, status: 200,
    summary:
      'Send one message (same as the WebSocket `send` event). Answers once every envelope is stored. Draws on the same per-device send limit as the socket ' +
      '(RATE_LIMITED with Retry-After). QUEUE_FULL: a recipient device already holds its most undelivered envelopes or bytes; nothing of the send was stored. ' +
      'DEVICE_NOT_IN_LIST: the sending device was removed from its account.',
    body: S.SendRequestSchema, maxBodyBytes: LIMITS.MAX_HTTP_BODY_BYTES, response: S.SendResultSchema,
    errors: [...BODY_ERRORS, ...AUTH_ERRORS, 'ENVELOPE_TOO_LARGE', 'TOO_MANY_RECIPIENTS', 'DUPLICATE_RECIPIENT', 'ALREADY_EXPIRED', 'ACCOUNT_NOT_FOUND', 'DEVICE_MISMATCH', 'DEVICE_NOT_IN_LIST', 'RATE_LIMITED', 'QUEUE_FULL', 'UNAVAILABLE'],
  },
  fetchMessages: {
    method: 'get', path: '/v1/messages', service: 'gateway', auth: true, status: 200,
    summary: "A page of this device's queue in server order, after the given id.",
    query: S.FetchQuerySchema, response: S.FetchResponseSchema, errors: ['VALIDATION_FAILED', ...AUTH_ERRORS],
  },
  ackMessages: {
    method: 'post', path: '/v1/messages/ack', service: 'gateway', auth: true, status: 200,
    summary: 'Acknowledge envelopes; the server deletes them before it answers. Ids of other devices are ignored.',
    body: S.AckRequestSchema, response: S.AckResultSchema, errors: [...BODY_ERRORS, ...AUTH_ERRORS],
  },
  readMessages: {
    method: 'post', path: '/v1/messages/read', service: 'gateway', auth: true, status: 200,
    summary: 'Read report (PROTOCOL.md §8): this device displayed these envelopes. Read-mode copies still stored get the deadline min(expiresAt, now + readTtlS). Ids of other devices are ignored.',
    body: S.ReadRequestSchema, response: S.ReadResultSchema, errors: [...BODY_ERRORS, ...AUTH_ERRORS],
  },
  recallMessage: {
    method: 'post', path: '/v1/messages/recall', service: 'gateway', auth: true, status: 200,
    summary:
      'Recall before delivery: deletes the still-queued copies of this device\'s own send with that clientMessageId, for every device of the named accounts ' +
      '(the accounts it was sent to: the peer or the group\'s members, and the sender\'s own account for its other devices; copies queued for accounts not named stay). ' +
      'Only the sending device can recall (the key is the token\'s account and device plus the clientMessageId); naming an account that got no copy recalls nothing of it. ' +
      'Copies already acknowledged are gone and cannot be recalled: `recalled` counts what was deleted, 0 when nothing was still queued (or no such send). ' +
      'Connected devices holding a copy unacknowledged get a `recalled` event. ' +
      'The send record stays until its retention ends, so a retry of the same send stays a duplicate and is not stored again. Draws on the per-device send limit.',
    body: S.RecallRequestSchema, response: S.RecallResultSchema,
    errors: [...BODY_ERRORS, ...AUTH_ERRORS, 'RATE_LIMITED', 'UNAVAILABLE'],
  },
  callRelays: {
    method: 'get', path: '/v1/calls/relays', service: 'gateway', auth: true, status: 200,
    summary:
      'Short-lived TURN credentials for calls (PROTOCOL.md §10; the TURN REST API scheme coturn checks with use-auth-secret): username "<unix expiry>:<opaque id>", ' +
      'password base64(HMAC-SHA1(secret, username)). The opaque id is stable per account and names no account, so the TURN operator can apply per-user quotas ' +
      `without learning who calls. Per-account limit ${RATE_LIMITS.TURN_CREDENTIALS_PER_ACCOUNT_PER_HOUR}/hour. CALLS_NOT_CONFIGURED: this deployment runs no TURN server.`,
    response: S.TurnCredentialsSchema, errors: [...AUTH_ERRORS, 'RATE_LIMITED', 'CALLS_NOT_CONFIGURED', 'UNAVAILABLE'],
  },
  powChallenge: {
    method: 'get', path: '/v1/accounts/pow', service: 'key-directory', auth: false, status: 200,
    summary: 'A proof-of-work challenge for registration.',
    response: S.PowChallengeResponseSchema, errors: ['RATE_LIMITED'],
  },
  register: {
    method: 'post', path: '/v1/accounts', service: 'key-directory', auth: false, status: 201,
    summary: 'Register an account: SignedDeviceList version 1, an AuthResponse by one of its devices, and a solved proof of work. Returns a token for that device.',
    body: S.RegisterRequestSchema, response: S.TokenResponseSchema,
    errors: [...BODY_ERRORS, 'POW_INVALID', 'BAD_DEVICE_LIST', 'BAD_SIGNATURE', 'UNSUPPORTED_SUITE', 'TOO_MANY_DEVICES', 'BAD_AUTH_RESPONSE', 'AUTH_CHALLENGE_INVALID', 'WRONG_ORIGIN', 'CLOCK_SKEW', 'DEVICE_NOT_IN_LIST', 'ACCOUNT_EXISTS', 'RATE_LIMITED'],
  },
  getAccount: {
    method: 'get', path: '/v1/accounts/{accountId}', service: 'key-directory', auth: true, status: 200,
    summary: "An account's current signed device list and handle claim.",
    params: S.AccountParamSchema, response: S.AccountResponseSchema, errors: ['VALIDATION_FAILED', ...AUTH_ERRORS, 'ACCOUNT_NOT_FOUND', 'RATE_LIMITED'],
  },
  getAccountByHandle: {
    method: 'get', path: '/v1/accounts/by-handle/{handle}', service: 'key-directory', auth: true, status: 200,
    summary: 'Look an account up by handle (canonicalised: NFKC, ASCII lower case).',
    params: S.HandleParamSchema, response: S.AccountResponseSchema, errors: ['INVALID_HANDLE', ...AUTH_ERRORS, 'HANDLE_NOT_FOUND', 'RATE_LIMITED'],
  },
  updateDevices: {
    method: 'put', path: '/v1/accounts/me/devices', service: 'key-directory', auth: true, status: 200,
    summary: "Replace this account's device list with a newer signed one. Removed devices lose their tokens, sockets and queues at once.",
    body: S.UpdateDevicesRequestSchema, response: S.UpdateDevicesResponseSchema,
    errors: [...BODY_ERRORS, ...AUTH_ERRORS, 'BAD_DEVICE_LIST', 'BAD_SIGNATURE', 'UNSUPPORTED_SUITE', 'TOO_MANY_DEVICES', 'DEVICE_LIST_STALE', 'FORBIDDEN', 'RATE_LIMITED'],
  },
  claimHandle: {
    method: 'put', path: '/v1/accounts/me/handle', service: 'key-directory', auth: true, status: 200,
    summary: 'Claim (or move to) a unique handle with a SignedHandleClaim.',
    body: S.HandleClaimRequestSchema, response: S.HandleResponseSchema,
    errors: [...BODY_ERRORS, ...AUTH_ERRORS, 'BAD_HANDLE_CLAIM', 'BAD_SIGNATURE', 'INVALID_HANDLE', 'HANDLE_TAKEN', 'HANDLE_CLAIM_STALE', 'FORBIDDEN', 'RATE_LIMITED'],
  },
  releaseHandle: {
    method: 'delete', path: '/v1/accounts/me/handle', service: 'key-directory', auth: true, status: 204,
    summary: "Release this account's handle.", errors: [...AUTH_ERRORS, 'HANDLE_NOT_FOUND'],
  },
  uploadKeys: {
    method: 'put', path: '/v1/keys', service: 'key-directory', auth: true, status: 204,
    summary: `Upload this device's signed prekey, last-resort KEM prekey and up to ${LIMITS.MAX_PREKEYS_PER_UPLOAD} one-time EC and KEM prekeys; every record's size, owner, kind and signature (under the device key) is checked.`,
    body: S.UploadKeysRequestSchema, maxBodyBytes: LIMITS.MAX_KEYS_UPLOAD_BODY_BYTES,
    errors: [...BODY_ERRORS, ...AUTH_ERRORS, 'BAD_PREKEY', 'BAD_SIGNATURE', 'TOO_MANY_PREKEYS', 'RATE_LIMITED'],
  },
  keyCounts: {
    method: 'get', path: '/v1/keys/me', service: 'key-directory', auth: true, status: 200,
    summary: "How many of this device's one-time prekeys are left, and whether its SPK and last-resort key are there.",
    response: S.KeyCountsResponseSchema, errors: [...AUTH_ERRORS],
  },
  getBundles: {
    method: 'get', path: '/v1/keys/{accountId}', service: 'key-directory', auth: true, status: 200,
    summary:
      'Prekey bundles of every device of an account (or one, with ?deviceId=). Each one-time key is handed out once. ' +
      `Past ${RATE_LIMITS.ONE_TIME_KEYS_PER_PAIR_PER_HOUR} one-time keys per requesting account and target device per hour, bundles come without one-time keys.`,
    params: S.AccountParamSchema, query: S.BundlesQuerySchema, response: S.BundlesResponseSchema,
    errors: ['VALIDATION_FAILED', ...AUTH_ERRORS, 'ACCOUNT_NOT_FOUND', 'RATE_LIMITED'],
  },
  putProvisioningMessage: {
    method: 'put', path: '/v1/provisioning/{channel}/message', service: 'key-directory', auth: true, status: 204,
    summary: `Device linking: the account-key holder leaves the encrypted ProvisioningMessage for the new device (kept ${LIMITS.PROVISIONING_TTL_S} s). The channel is b64u(SHA-256(EPH_N)) from the LinkQR; the first account to post owns it (its retries replace the message, another account gets 409).`,
    params: S.ProvisioningParamSchema, body: S.ProvisioningMessageSchema, maxBodyBytes: LIMITS.MAX_PROVISIONING_BODY_BYTES, errors: [...BODY_ERRORS, ...AUTH_ERRORS, 'RATE_LIMITED', 'PROVISIONING_CHANNEL_TAKEN'],
  },
  getProvisioningMessage: {
    method: 'get', path: '/v1/provisioning/{channel}/message', service: 'key-directory', auth: false, status: 200,
    summary: 'Device linking: the new device (which has no account yet) polls for its ProvisioningMessage; 404 until it is there.',
    params: S.ProvisioningParamSchema, response: S.ProvisioningMessageSchema, errors: ['VALIDATION_FAILED', 'NOT_FOUND', 'RATE_LIMITED'],
  },
  putLinkReply: {
    method: 'put', path: '/v1/provisioning/{channel}/reply', service: 'key-directory', auth: false, status: 204,
    summary: 'Device linking: the new device answers with its LinkReply (only while the channel has a message). The first reply wins; a second gets 409.',
    params: S.ProvisioningParamSchema, body: S.LinkReplySchema, errors: [...BODY_ERRORS, 'NOT_FOUND', 'RATE_LIMITED', 'PROVISIONING_REPLY_EXISTS'],
  },
  getLinkReply: {
    method: 'get', path: '/v1/provisioning/{channel}/reply', service: 'key-directory', auth: true, status: 200,
    summary: 'Device linking: the account that posted the ProvisioningMessage polls for the LinkReply; 404 until it is there (and always for any other account).',
    params: S.ProvisioningParamSchema, response: S.LinkReplySchema, errors: ['VALIDATION_FAILED', ...AUTH_ERRORS, 'NOT_FOUND'],
  },
  ktSth: {
    method: 'get', path: '/v1/kt/sth', service: 'key-directory', auth: false, status: 200,
    summary: 'Key transparency (PROTOCOL.md §12): the newest signed tree head that carries the configured quorum of witness cosignatures. 503 UNAVAILABLE with Retry-After until one exists.',
    response: KT.KtSthResponseSchema, errors: ['UNAVAILABLE'],
  },
  ktConsistency: {
    method: 'get', path: '/v1/kt/consistency', service: 'key-directory', auth: false, status: 200,
    summary: 'RFC 9162 §2.1.4 consistency proof between two tree sizes, 1 ≤ first ≤ second ≤ the current STH size. Rate-limited per client address.',
    query: KT.KtConsistencyQuerySchema, response: KT.KtConsistencyResponseSchema, errors: ['VALIDATION_FAILED', 'RATE_LIMITED', 'UNAVAILABLE'],
  },
  ktLookup: {
    method: 'get', path: '/v1/kt/lookup', service: 'key-directory', auth: false, status: 200,
    summary:
      "The label's latest leaf under the current STH as a LookupResult: leaf, index, STH, inclusion proof, statement and the log's kt-lookup signature. " +
      'Rate-limited per client address; every answer, found or not, takes at least KT_LOOKUP_FLOOR_MS so timing does not tell whether a label exists.',
    query: KT.KtLookupQuerySchema, response: KT.KtLookupResponseSchema, errors: ['VALIDATION_FAILED', 'BAD_ENCODING', 'KT_LABEL_NOT_FOUND', 'RATE_LIMITED', 'UNAVAILABLE'],
  },
  ktMonitor: {
    method: 'get', path: '/v1/kt/monitor', service: 'key-directory', auth: false, status: 200,
    summary: `Every leaf of a label with index ≥ since (at most ${KT.KT_LIMITS.MONITOR_MAX_RESULTS}), each a LookupResult under the same STH, for owners checking their own labels (§12 monitoring).`,
    query: KT.KtMonitorQuerySchema, response: KT.KtMonitorResponseSchema, errors: ['VALIDATION_FAILED', 'BAD_ENCODING', 'RATE_LIMITED', 'UNAVAILABLE'],
  },
  ktLeaves: {
    method: 'get', path: '/v1/kt/leaves', service: 'key-directory', auth: false, status: 200,
    summary: `Raw leaves and statements from index start (at most ${KT.KT_LIMITS.LEAVES_PAGE_MAX}) below the current STH size, for independent monitors.`,
    query: KT.KtLeavesQuerySchema, response: KT.KtLeavesResponseSchema, errors: ['VALIDATION_FAILED', 'RATE_LIMITED', 'UNAVAILABLE'],
  },
  ktConfig: {
    method: 'get', path: '/v1/kt/config', service: 'key-directory', auth: false, status: 200,
    summary: "The log's public key, its witnesses' keys and the quorum: clients pin the same JSON the operator publishes out of band (trust on first use otherwise).",
    response: KT.KtConfigResponseSchema, errors: [],
  },
  createAttachment: {
    method: 'post', path: '/v1/attachments', service: 'media-upload', auth: true, status: 201,
    summary:
      'Start an upload of an encrypted attachment blob (PROTOCOL.md §9): a random id and an S3 multipart upload with one pre-signed PUT URL per part (a single part below the multipart threshold); each URL signs its part\'s exact Content-Length and dies when the upload completes. ' +
      'Per-account quotas: bytes per day and unfinished uploads (docs/operations.md).',
    body: AT.CreateAttachmentRequestSchema, response: AT.CreateAttachmentResponseSchema,
    errors: [...BODY_ERRORS, ...AUTH_ERRORS, 'ATTACHMENT_TOO_LARGE', 'ATTACHMENT_QUOTA_EXCEEDED', 'TOO_MANY_PENDING_UPLOADS', 'UNAVAILABLE'],
  },
  attachmentParts: {
    method: 'get', path: '/v1/attachments/{id}/parts', service: 'media-upload', auth: true, status: 200,
    summary: 'Resume an upload: which parts are stored, and fresh pre-signed URLs for the others. Uploader only.',
    params: AT.AttachmentParamSchema, response: AT.AttachmentPartsResponseSchema,
    errors: ['VALIDATION_FAILED', ...AUTH_ERRORS, 'ATTACHMENT_NOT_FOUND', 'NOT_UPLOADER', 'ATTACHMENT_ALREADY_COMPLETE'],
  },
  completeAttachment: {
    method: 'post', path: '/v1/attachments/{id}/complete', service: 'media-upload', auth: true, status: 200,
    summary: 'Finish an upload: the stored object must have exactly the declared size (else it is deleted and the upload refused); only then can it be downloaded. Uploader only; idempotent.',
    params: AT.AttachmentParamSchema, response: AT.CompleteAttachmentResponseSchema,
    errors: ['VALIDATION_FAILED', ...AUTH_ERRORS, 'ATTACHMENT_NOT_FOUND', 'NOT_UPLOADER', 'UPLOAD_INCOMPLETE', 'UPLOAD_SIZE_MISMATCH'],
  },
  deleteAttachment: {
    method: 'delete', path: '/v1/attachments/{id}', service: 'media-upload', auth: true, status: 204,
    summary: 'Abort an upload or delete an attachment, with its stored bytes. Uploader only.',
    params: AT.AttachmentParamSchema, errors: ['VALIDATION_FAILED', ...AUTH_ERRORS, 'ATTACHMENT_NOT_FOUND', 'NOT_UPLOADER'],
  },
  getAttachment: {
    method: 'get', path: '/v1/attachments/{id}', service: 'media-upload', auth: true, status: 200,
    summary: 'A short-lived pre-signed GET of a completed attachment, for any authenticated account that knows its (unguessable) id.',
    params: AT.AttachmentParamSchema, response: AT.DownloadAttachmentResponseSchema,
    errors: ['VALIDATION_FAILED', ...AUTH_ERRORS, 'ATTACHMENT_NOT_FOUND', 'ATTACHMENT_NOT_READY'],
  },
} satisfies Record<string, RouteDef>;

export type RouteId = keyof typeof ROUTES;

const ROUTE_MATCHERS = (Object.values(ROUTES) as RouteDef[]).map((r) => ({
  route: r,
  pattern: new RegExp(`^${r.path.replace(/[.]/g, '\\.').replace(/\{[^}]+\}/g, '[^/]+')}$`),
}));

/** The public route a request is for (method and path without the query), if any. */
export function routeFor(method: string, path: string): RouteDef | undefined {
  const m = method.toLowerCase();
  const p = path.split('?')[0]!;
  return ROUTE_MATCHERS.find((r) => r.route.method === m && r.pattern.test(p))?.route;
}

/** Largest JSON body a request may carry: its route's own limit, else the small default. */
export function maxBodyBytesFor(method: string, path: string): number {
  return routeFor(method, path)?.maxBodyBytes ?? LIMITS.DEFAULT_HTTP_BODY_BYTES;
}

/** Internal routes every service exposes on its own port (not through the public origin). */
export const OPS_ROUTES = ['/healthz', '/readyz', '/metrics'] as const;

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
}

/** OpenAPI 3.1 document for every public route, generated from ROUTES. */
export function buildOpenApiDocument(serverUrl: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const [id, route] of Object.entries(ROUTES) as [string, RouteDef][]) {
    const parameters: unknown[] = [];
    for (const [where, schema] of [['path', route.params], ['query', route.query]] as const) {
      if (!schema) continue;
      const js = jsonSchema(schema, 'input') as { properties?: Record<string, unknown>; required?: string[] };
      for (const [name, prop] of Object.entries(js.properties ?? {})) {
        parameters.push({ name, in: where, required: where === 'path' || (js.required ?? []).includes(name), schema: prop });
      }
    }
    const responses: Record<string, unknown> = {
      [String(route.status)]: route.response
        ? { description: 'success', content: { 'application/json': { schema: jsonSchema(route.response, 'output') } } }
        : { description: 'success' },
    };
    const byStatus = new Map<number, ErrorCode[]>();
    for (const code of route.errors) {
      const status = ERROR_STATUS[code];
      byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
    }
    byStatus.set(500, ['INTERNAL']);
    for (const [status, codes] of byStatus) {
      responses[String(status)] = {
        description: `error codes: ${[...new Set(codes)].join(', ')}`,
        content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
      };
    }
    paths[route.path] ??= {};
    paths[route.path]![route.method] = {
      operationId: id,
      summary: route.summary,
      tags: [route.service],
      ...(route.auth ? { security: [{ bearer: [] }] } : {}),
      ...(parameters.length ? { parameters } : {}),
      ...(route.body ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(route.body, 'input') } } } } : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Umbra API',
      version: '1',
      description:
        'End-to-end-encrypted messaging backend. The servers hold only public keys and opaque ciphertext. ' +
        `Limits: ${JSON.stringify(LIMITS, (_k, v) => (v instanceof RegExp ? v.source : v))}. Default rate limits: ${JSON.stringify(RATE_LIMITS)}.`,
    },
    servers: [{ url: serverUrl }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'opaque token from POST /v1/auth/token' } },
      schemas: { Error: jsonSchema(S.ErrorBodySchema, 'output') },
    },
    paths,
  };
}

/**
 * Path prefixes of the public origin and the service behind each. The local edge, the compose nginx
 * and the Kubernetes Ingress all route by this table (tests check the latter two against it).
 */
export const PUBLIC_PREFIXES: { prefix: string; service: ServiceName }[] = [
  { prefix: '/v1/ws', service: 'gateway' },
  { prefix: '/v1/auth', service: 'gateway' },
  { prefix: '/v1/messages', service: 'gateway' },
  { prefix: '/v1/calls', service: 'gateway' },
  { prefix: '/openapi.json', service: 'gateway' },
  { prefix: '/v1/accounts', service: 'key-directory' },
  { prefix: '/v1/keys', service: 'key-directory' },
  { prefix: '/v1/kt', service: 'key-directory' },
  { prefix: '/v1/backup', service: 'key-directory' },
  { prefix: '/v1/provisioning', service: 'key-directory' },
  { prefix: '/v1/attachments', service: 'media-upload' },
];

export function serviceForPath(path: string): ServiceName | undefined {
  return PUBLIC_PREFIXES.find((p) => path === p.prefix || path.startsWith(`${p.prefix}/`) || path.startsWith(`${p.prefix}?`))?.service;
}

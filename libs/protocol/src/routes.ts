import { z } from 'zod';
import * as S from './schemas';
import * as AT from './attachments';
import { ERROR_STATUS, type ErrorCode } from './errors';
import { LIMITS, RATE_LIMITS } from './limits';

export type ServiceName = 'gateway' | 'key-directory' | 'message-relay' | 'media-upload' | 'expiry-worker';

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
    summary: 'Send one message (same as the WebSocket `send` event). Answers once every envelope is stored.',
    body: S.SendRequestSchema, response: S.SendResultSchema,
    errors: [...BODY_ERRORS, ...AUTH_ERRORS, 'ENVELOPE_TOO_LARGE', 'TOO_MANY_RECIPIENTS', 'DUPLICATE_RECIPIENT', 'ALREADY_EXPIRED', 'ACCOUNT_NOT_FOUND', 'DEVICE_MISMATCH', 'RATE_LIMITED', 'UNAVAILABLE'],
  },
  fetchMessages: {
    method: 'get', path: '/v1/messages', service: 'gateway', auth: true, status: 200,
    summary: "A page of this device's queue in server order, after the given id.",
    query: S.FetchQuerySchema, response: S.FetchResponseSchema, errors: ['VALIDATION_FAILED', ...AUTH_ERRORS],
  },
  ackMessages: {
    method: 'post', path: '/v1/messages/ack', service: 'gateway', auth: true, status: 200,
    summary: 'Acknowledge envelopes; the server deletes them. Ids of other devices are ignored.',
    body: S.AckRequestSchema, response: S.AckResultSchema, errors: [...BODY_ERRORS, ...AUTH_ERRORS],
  },
  readMessages: {
    method: 'post', path: '/v1/messages/read', service: 'gateway', auth: true, status: 200,
    summary: 'Read report (PROTOCOL.md §8): this device displayed these envelopes. Read-mode copies still stored get the deadline min(expiresAt, now + readTtlS). Ids of other devices are ignored.',
    body: S.ReadRequestSchema, response: S.ReadResultSchema, errors: [...BODY_ERRORS, ...AUTH_ERRORS],
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
    body: S.UploadKeysRequestSchema,
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
    summary: `Device linking: the account-key holder leaves the encrypted ProvisioningMessage for the new device (kept ${LIMITS.PROVISIONING_TTL_S} s). The channel is b64u(SHA-256(EPH_N)) from the LinkQR.`,
    params: S.ProvisioningParamSchema, body: S.ProvisioningMessageSchema, errors: [...BODY_ERRORS, ...AUTH_ERRORS, 'RATE_LIMITED'],
  },
  getProvisioningMessage: {
    method: 'get', path: '/v1/provisioning/{channel}/message', service: 'key-directory', auth: false, status: 200,
    summary: 'Device linking: the new device (which has no account yet) polls for its ProvisioningMessage; 404 until it is there.',
    params: S.ProvisioningParamSchema, response: S.ProvisioningMessageSchema, errors: ['VALIDATION_FAILED', 'NOT_FOUND', 'RATE_LIMITED'],
  },
  putLinkReply: {
    method: 'put', path: '/v1/provisioning/{channel}/reply', service: 'key-directory', auth: false, status: 204,
    summary: 'Device linking: the new device answers with its LinkReply (only while the channel has a message).',
    params: S.ProvisioningParamSchema, body: S.LinkReplySchema, errors: [...BODY_ERRORS, 'NOT_FOUND', 'RATE_LIMITED'],
  },
  getLinkReply: {
    method: 'get', path: '/v1/provisioning/{channel}/reply', service: 'key-directory', auth: true, status: 200,
    summary: 'Device linking: the account-key holder polls for the LinkReply; 404 until it is there.',
    params: S.ProvisioningParamSchema, response: S.LinkReplySchema, errors: ['VALIDATION_FAILED', ...AUTH_ERRORS, 'NOT_FOUND'],
  },
  createAttachment: {
    method: 'post', path: '/v1/attachments', service: 'media-upload', auth: true, status: 201,
    summary:
      'Start an upload of an encrypted attachment blob (PROTOCOL.md §9): a random id and pre-signed URLs to the object store — one PUT below the multipart threshold, else one per part. ' +
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

import { randomBytes } from 'node:crypto';
import { encodeAccountId } from '@umbra/crypto';
import { LIMITS } from './limits';
import { ROUTES, maxBodyBytesFor, routeFor, type RouteDef } from './routes';

const b64 = (n: number) => randomBytes(n).toString('base64url');
const ACCOUNT = encodeAccountId(new Uint8Array(32).fill(7));
const ID = LIMITS.MAX_ENVELOPE_ID; // the longest valid envelope id

/** The largest body each route accepts (every field at its maximum), built by hand from its schema. */
const LARGEST: Record<string, () => unknown> = {
  authToken: () => ({ authResponse: b64(LIMITS.MAX_AUTH_RESPONSE_BYTES) }),
  sendMessage: () => {
    // The most recipients, with contents that together reach the send total.
    const per = Math.floor(LIMITS.MAX_SEND_TOTAL_BYTES / LIMITS.MAX_RECIPIENTS_PER_SEND);
    return {
      clientMessageId: b64(LIMITS.CLIENT_MESSAGE_ID_BYTES),
      recipients: Array.from({ length: LIMITS.MAX_RECIPIENTS_PER_SEND }, () => ({ accountId: ACCOUNT, deviceId: 0xffff_ffff, type: 2, content: b64(per) })),
      expiresAt: LIMITS.MAX_EXPIRES_AT_MS,
      readTtlS: LIMITS.MAX_READ_TTL_S,
      attachments: Array.from({ length: LIMITS.MAX_ATTACHMENTS_PER_MESSAGE }, () => b64(16)),
    };
  },
  ackMessages: () => ({ ids: Array.from({ length: LIMITS.MAX_ACK_IDS }, () => ID) }),
  readMessages: () => ({ ids: Array.from({ length: LIMITS.MAX_ACK_IDS }, () => ID) }),
  recallMessage: () => ({ clientMessageId: b64(LIMITS.CLIENT_MESSAGE_ID_BYTES), accountIds: Array.from({ length: LIMITS.MAX_RECALL_ACCOUNTS }, () => ACCOUNT) }),
  register: () => ({
    deviceList: b64(LIMITS.MAX_DEVICE_LIST_BYTES),
    authResponse: b64(LIMITS.MAX_AUTH_RESPONSE_BYTES),
    pow: { challenge: b64(32), solution: b64(LIMITS.POW_SOLUTION_BYTES) },
  }),
  updateDevices: () => ({ deviceList: b64(LIMITS.MAX_DEVICE_LIST_BYTES) }),
  claimHandle: () => ({ claim: b64(LIMITS.MAX_HANDLE_CLAIM_BYTES) }),
  uploadKeys: () => ({
    signedPreKey: b64(148),
    lastResortKemPreKey: b64(1684),
    oneTimePreKeys: Array.from({ length: LIMITS.MAX_PREKEYS_PER_UPLOAD }, () => b64(148)),
    oneTimeKemPreKeys: Array.from({ length: LIMITS.MAX_PREKEYS_PER_UPLOAD }, () => b64(1684)),
  }),
  putProvisioningMessage: () => ({ message: b64(LIMITS.MAX_PROVISIONING_MESSAGE_BYTES) }),
  putLinkReply: () => ({ reply: b64(65) }),
  createAttachment: () => ({ size: Number.MAX_SAFE_INTEGER, expiresAt: LIMITS.MAX_EXPIRES_AT_MS }),
};

describe('request body limits per route', () => {
  const withBody = (Object.entries(ROUTES) as [string, RouteDef][]).filter(([, r]) => r.body);

  it('has a largest valid body for every route that takes one', () => {
    expect(withBody.map(([id]) => id).sort()).toEqual(Object.keys(LARGEST).sort());
  });

  it.each(withBody.map(([id, r]) => [id, r] as const))('%s: its largest valid body fits its limit', (id, route) => {
    const body = LARGEST[id]!();
    expect(route.body!.safeParse(body).success).toBe(true);
    const bytes = Buffer.byteLength(JSON.stringify(body));
    const path = route.path.replace(/\{[^}]+\}/g, 'x'.repeat(43));
    expect(bytes).toBeLessThanOrEqual(maxBodyBytesFor(route.method, path));
  });

  it('gives every other route the small default, and no route more than the overall maximum', () => {
    expect(maxBodyBytesFor('POST', '/v1/auth/token')).toBe(LIMITS.DEFAULT_HTTP_BODY_BYTES);
    expect(maxBodyBytesFor('POST', '/v1/nowhere')).toBe(LIMITS.DEFAULT_HTTP_BODY_BYTES);
    expect(maxBodyBytesFor('POST', '/v1/messages?x=1')).toBe(LIMITS.MAX_HTTP_BODY_BYTES);
    expect(maxBodyBytesFor('PUT', '/v1/provisioning/abc/message')).toBe(LIMITS.MAX_PROVISIONING_BODY_BYTES);
    expect(routeFor('GET', '/v1/attachments/abc')?.path).toBe('/v1/attachments/{id}');
    for (const r of Object.values(ROUTES) as RouteDef[]) expect(r.maxBodyBytes ?? 0).toBeLessThanOrEqual(LIMITS.MAX_HTTP_BODY_BYTES);
  });
});

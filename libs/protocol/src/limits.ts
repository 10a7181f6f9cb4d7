/** Every limit the servers enforce. Documented in docs/api.md (generated) and in the OpenAPI document. */
export const LIMITS = {
  /** Bytes of one opaque envelope `content` (PROTOCOL.md §7), after base64url decoding. */
  MAX_ENVELOPE_CONTENT_BYTES: 96 * 1024,
  /** Recipient devices in one send. Larger fan-outs are split by the SDK, account by account. */
  MAX_RECIPIENTS_PER_SEND: 1000,
  /** Sum of all envelope contents of one send, decoded. */
  MAX_SEND_TOTAL_BYTES: 4 * 1024 * 1024,
  /** Devices in one account's signed device list. */
  MAX_DEVICES_PER_ACCOUNT: 16,
  /** Bytes of a SignedDeviceList: 16 certificates of 211 bytes plus header and signature. */
  MAX_DEVICE_LIST_BYTES: 64 + 16 * 211 + 64,
  MAX_AUTH_RESPONSE_BYTES: 1 + 2 + 1 + 255 + 32 + 4 + 32 + 8 + 64,
  MAX_HANDLE_CLAIM_BYTES: 1 + 2 + 1 + 32 + 32 + 8 + 8 + 64,
  HANDLE_MIN_LENGTH: 3,
  HANDLE_MAX_LENGTH: 32,
  HANDLE_PATTERN: /^[a-z0-9_]{3,32}$/,
  CLIENT_MESSAGE_ID_BYTES: 16,
  AUTH_NONCE_BYTES: 32,
  /** Lifetime of an auth challenge nonce (PROTOCOL.md §1). */
  AUTH_CHALLENGE_TTL_S: 60,
  /** Allowed |client_time − server time| in an AuthResponse. */
  AUTH_CLOCK_SKEW_S: 300,
  /** Upper bound of a bearer token's lifetime (PROTOCOL.md §1: ≤ 24 h). */
  TOKEN_TTL_S: 24 * 3600,
  /** Lifetime of a proof-of-work challenge. */
  POW_CHALLENGE_TTL_S: 300,
  POW_SOLUTION_BYTES: 8,
  /** Envelopes per drain page and per REST fetch. */
  FETCH_PAGE_MAX: 500,
  /** Message ids in one ack. */
  MAX_ACK_IDS: 1000,
  /** Default maximum retention of an undelivered envelope. */
  DEFAULT_MAX_RETENTION_S: 30 * 24 * 3600,
  /** Largest expiresAt accepted: retention is capped anyway, this only rejects nonsense. */
  MAX_EXPIRES_AT_MS: 8_640_000_000_000_000,
  /** Attachment ids one message may reference (deleted with it when it vanishes). */
  MAX_ATTACHMENTS_PER_MESSAGE: 32,
  /** Largest read-mode timer, u32 seconds (PROTOCOL.md §7). */
  MAX_READ_TTL_S: 0xffff_ffff,
  /** One-time prekeys (EC or KEM) per kind in one upload (PROTOCOL.md §2). */
  MAX_PREKEYS_PER_UPLOAD: 100,
  /** Below this many one-time keys of a kind the device is told to refill ("keys-low"). */
  PREKEY_LOW_THRESHOLD: 20,
  /** How long a device-linking mailbox keeps its messages. */
  PROVISIONING_TTL_S: 600,
  /** Bytes of a ProvisioningMessage (certificate, keys, contacts and group state). */
  MAX_PROVISIONING_MESSAGE_BYTES: 64 * 1024,
  /** Attachments (PROTOCOL.md §9): default largest encrypted blob; ATTACHMENT_MAX_BYTES configures it. */
  DEFAULT_ATTACHMENT_MAX_BYTES: 8 * 1024 ** 3,
  /** Smallest blob: an empty file (56-byte header, 541 padded bytes, one 16-byte tag). */
  MIN_ATTACHMENT_BYTES: 613,
  /** Default multipart part size (S3 accepts 5 MiB to 5 GiB, except the last part). */
  DEFAULT_ATTACHMENT_PART_BYTES: 8 * 1024 * 1024,
  /** S3's smallest part (every part but the last). */
  MIN_ATTACHMENT_PART_BYTES: 5 * 1024 * 1024,
  /** S3's most parts in one multipart upload. */
  MAX_ATTACHMENT_PARTS: 10_000,
  /** Blobs at or above this size are uploaded in parts by default; smaller ones with one PUT. */
  DEFAULT_ATTACHMENT_MULTIPART_THRESHOLD_BYTES: 16 * 1024 * 1024,
  /** Maximum HTTP request body. */
  MAX_HTTP_BODY_BYTES: 8 * 1024 * 1024,
} as const;

/** Default rate limits; every one is configurable per deployment (docs/operations.md). */
export const RATE_LIMITS = {
  /** Registrations per client IP per hour. */
  REGISTER_PER_IP_PER_HOUR: 20,
  /** Registration attempts per account id per hour. */
  REGISTER_PER_ACCOUNT_PER_HOUR: 5,
  /** Auth challenges per client IP per minute. */
  CHALLENGE_PER_IP_PER_MINUTE: 120,
  /** Token requests per device per minute. */
  TOKEN_PER_DEVICE_PER_MINUTE: 30,
  /** Sends per device per second (burst 2× this). */
  SEND_PER_DEVICE_PER_SECOND: 200,
  /** Account and handle lookups per account per minute. */
  LOOKUP_PER_ACCOUNT_PER_MINUTE: 600,
  /** Prekey bundle fetches per requesting account per hour (a fan-out to a 1000-member group fits). */
  BUNDLE_FETCH_PER_ACCOUNT_PER_HOUR: 10_000,
  /**
   * One-time prekeys one account may take from one target device per hour. Past it, bundles come
   * without one-time keys (the SPK and last-resort KEM key still make a secure session), so a
   * requester cannot exhaust another device's keys, and nobody is refused.
   */
  ONE_TIME_KEYS_PER_PAIR_PER_HOUR: 5,
  /** Device-list and handle changes per account per hour. */
  ACCOUNT_CHANGES_PER_ACCOUNT_PER_HOUR: 60,
} as const;

/** Proof-of-work difficulty in leading zero bits of SHA-256 (about one second in a browser at 20). */
export const DEFAULT_POW_DIFFICULTY = 20;

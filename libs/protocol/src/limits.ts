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
  /** Recipient accounts named in one recall: a send reaches at most MAX_RECIPIENTS_PER_SEND devices, so at most as many accounts. */
  MAX_RECALL_ACCOUNTS: 1000,
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
  /** Message ids in one ack (REST or socket `ack`) and in one read report (`read`). */
  MAX_ACK_IDS: 1000,
  /** Largest envelope id (2^63-1, Postgres bigint), a decimal string: ids never pass through a JS number. */
  MAX_ENVELOPE_ID: '9223372036854775807',
  /** Default cap on envelopes queued for one recipient device; QUEUE_MAX_ENVELOPES_PER_DEVICE configures it. */
  DEFAULT_QUEUE_MAX_ENVELOPES: 50_000,
  /** Default cap on stored bytes queued for one recipient device; QUEUE_MAX_BYTES_PER_DEVICE configures it. */
  DEFAULT_QUEUE_MAX_BYTES: 512 * 1024 * 1024,
  /**
   * Default longest a gateway trusts its cached device lists (DEVICE_SET_CACHE_TTL_MS): a removed device
   * whose revocation broadcast was lost can send for at most this long.
   */
  DEFAULT_DEVICE_SET_CACHE_TTL_MS: 5_000,
  /** Envelopes pushed to one socket and not yet acknowledged, at most (drain pages and live pushes alike). */
  DELIVERY_WINDOW_MESSAGES: 1000,
  /** Bytes (encoded envelopes) pushed to one socket and not yet acknowledged, at most; one envelope always fits. */
  DELIVERY_WINDOW_BYTES: 2 * 1024 * 1024,
  /** Socket `ack` events per connection per second (burst 2× this). */
  SOCKET_ACK_EVENTS_PER_SECOND: 200,
  /** Socket `read` events per connection per second (burst 2× this). */
  SOCKET_READ_EVENTS_PER_SECOND: 50,
  /** Socket `typing` events per connection per second (burst 2× this); never stored, so a short burst is all a client needs. */
  SOCKET_TYPING_EVENTS_PER_SECOND: 5,
  /** Bytes of the opaque group id a `typing` event may carry (the SDK's are 32); the server only relays it. */
  TYPING_GROUP_ID_MIN_BYTES: 16,
  TYPING_GROUP_ID_MAX_BYTES: 64,
  /** Bytes of one socket frame before the connection's token is verified (the connect packet carrying it). */
  MAX_SOCKET_PREAUTH_FRAME_BYTES: 4 * 1024,
  /** JSON around one recipient's content in a socket `send` (account id, device id, type, keys). */
  SOCKET_SEND_RECIPIENT_OVERHEAD_BYTES: 128,
  /** JSON of a socket `send` outside its recipients (event name, clientMessageId, expiry, attachment ids). */
  SOCKET_SEND_FIXED_OVERHEAD_BYTES: 4 * 1024,
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
  /** A device replaces its signed prekey and last-resort KEM key this often (PROTOCOL.md §2). */
  SIGNED_PREKEY_ROTATION_MS: 7 * 86_400_000,
  /** A replaced signed prekey's (and last-resort KEM key's) private half is kept this long for in-flight sessions, then deleted. */
  SIGNED_PREKEY_RETENTION_MS: 30 * 86_400_000,
  /** How often a running SDK checks whether its signed prekey is due for rotation. */
  SIGNED_PREKEY_CHECK_INTERVAL_MS: 3600_000,
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
  /**
   * Default lifetime of a pre-signed upload URL. S3 checks expiry when a request starts, so this must
   * cover the wait before a part's PUT begins, not its transfer; the SDK fetches fresh URLs when they lapse.
   */
  DEFAULT_ATTACHMENT_UPLOAD_URL_TTL_S: 900,
  /** Longest configurable upload URL lifetime (a URL is never valid past its upload's deadline either). */
  MAX_ATTACHMENT_UPLOAD_URL_TTL_S: 3600,
  /** Blobs at or above this size are uploaded in parts by default; smaller ones with one PUT. */
  DEFAULT_ATTACHMENT_MULTIPART_THRESHOLD_BYTES: 16 * 1024 * 1024,
  /**
   * Largest JSON request body of any route: the REST send (every content base64url-encoded, plus the
   * JSON around 1,000 recipients). Routes take their own limit from `ROUTES[…].maxBodyBytes`.
   */
  MAX_HTTP_BODY_BYTES: 6 * 1024 * 1024,
  /** Largest JSON request body of a route without a limit of its own; checked before the body is read. */
  DEFAULT_HTTP_BODY_BYTES: 64 * 1024,
  /** Body of PUT /v1/keys: a signed prekey, a last-resort KEM key and 100 + 100 one-time prekeys, base64url. */
  MAX_KEYS_UPLOAD_BODY_BYTES: 512 * 1024,
  /** Body of PUT /v1/provisioning/{channel}/message: a ProvisioningMessage, base64url. */
  MAX_PROVISIONING_BODY_BYTES: 128 * 1024,
  /** Seconds a client is told to wait (Retry-After) when Postgres, Redis or S3 is unavailable. */
  UNAVAILABLE_RETRY_AFTER_S: 5,
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
  /** Sends per device per second (burst 2× this), over REST and socket together, shared by every gateway. */
  SEND_PER_DEVICE_PER_SECOND: 200,
  /** Account and handle lookups per account per minute. */
  LOOKUP_PER_ACCOUNT_PER_MINUTE: 600,
  /** Unauthenticated key-transparency reads (lookup, monitor, leaves, consistency) per client address. */
  KT_LOOKUP_PER_IP_PER_MINUTE: 1200,
  /** Prekey bundle fetches per requesting account per hour (a fan-out to a 1000-member group fits). */
  BUNDLE_FETCH_PER_ACCOUNT_PER_HOUR: 10_000,
  /**
   * One-time prekeys one account may take from one target device per hour. Past it, bundles come
   * without one-time keys (the SPK and last-resort KEM key still make a secure session), so a
   * requester cannot exhaust another device's keys, and nobody is refused.
   */
  ONE_TIME_KEYS_PER_PAIR_PER_HOUR: 5,
  /** TURN credentials per account per hour (each is good for a whole call; a client asks once per call or less). */
  TURN_CREDENTIALS_PER_ACCOUNT_PER_HOUR: 120,
  /** Device-list and handle changes per account per hour. */
  ACCOUNT_CHANGES_PER_ACCOUNT_PER_HOUR: 60,
  /**
   * Distinct client addresses (IPv4, or IPv6 /64) one per-address limit tracks per window. Past it, new
   * addresses are refused (429) until the window ends, so a flood of addresses cannot fill Redis.
   */
  MAX_CLIENT_BUCKETS_PER_WINDOW: 100_000,
} as const;

/**
 * Largest socket frame after authentication: the biggest `send` (every content base64url-encoded,
 * plus its JSON). Larger frames close the socket.
 */
export const MAX_SOCKET_FRAME_BYTES =
  Math.ceil((LIMITS.MAX_SEND_TOTAL_BYTES * 4) / 3) +
  LIMITS.MAX_RECIPIENTS_PER_SEND * (LIMITS.SOCKET_SEND_RECIPIENT_OVERHEAD_BYTES + 1) +
  LIMITS.SOCKET_SEND_FIXED_OVERHEAD_BYTES;

/** Proof-of-work difficulty in leading zero bits of SHA-256 (about one second in a browser at 20). */
export const DEFAULT_POW_DIFFICULTY = 20;

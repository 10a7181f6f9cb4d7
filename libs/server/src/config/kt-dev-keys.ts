/**
 * Deterministic key-transparency keys for development and tests only (PROTOCOL.md §12), so `npm start`
 * runs a log and a witness with no setup. Their secret halves are public (they are in this file), so
 * NODE_ENV=production refuses to start with either of them (config.ts), and a witness refuses to follow
 * the development log key in production.
 *
 * secret = SHA256(ASCII(name)); public = Pub(secret) (BIP340 x-only).
 */
export const DEV_KT_LOG_SIGNING_KEY = 'c9dda017a62357e402c28f4df5061de90ef494f8f448348245f6cc6ff9944c74'; // SHA256("umbra/dev/kt-log-signing-key")
export const DEV_KT_LOG_PUBLIC_KEY = '3b606ef10d5669a1cf4384109128329aa3d10b0fd6730a1e5e33a4ac9d212821';
export const DEV_WITNESS_SIGNING_KEY = 'e8f1bb173b87dd7b66d39e7d9e1d95c8689ba18ccdc1a4a5aac65f3332e30bfc'; // SHA256("umbra/dev/witness-signing-key")
export const DEV_WITNESS_PUBLIC_KEY = 'ed8903df7a0a7aa81cf337fbdf39e688c0cb82d4fbe51ee9d059ff1cdc24bec9';

/** 64 lower- or upper-case hex digits: a 32-byte key. */
export const HEX_KEY = /^[0-9a-fA-F]{64}$/;

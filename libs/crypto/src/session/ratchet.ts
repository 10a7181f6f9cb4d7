import { ByteReader, b64uDecode, b64uEncode, bytesEqual, concatBytes, u16, u32, u8 } from '../bytes';
import { CryptoError } from '../errors';
import { pad, unpad } from '../content';
import { SUITE_V1, aesGcmDecrypt, aesGcmEncrypt, ascii, ecdh, generateSecretKey, hkdf, hmacSha256, pub, randomBytes } from '../primitives';

/** PROTOCOL.md §4 bounds (libsignal's). */
export const MAX_SKIP = 2000;
export const MAX_SKIPPED_KEYS = 2000;
export const MAX_RECEIVER_CHAINS = 5;
export const SKIPPED_KEY_TTL_MS = 30 * 86_400_000;

export interface SkippedKey {
  chain: string;
  n: number;
  mk: Uint8Array;
  t: number;
}

/** One Double Ratchet session (§4.5 fields). `he`: header encryption (§4.4), fixed when the session is created. */
export interface RatchetState {
  v: 1;
  self: Uint8Array;
  peer: Uint8Array;
  baseKey: Uint8Array;
  rk: Uint8Array;
  dhsSk: Uint8Array;
  dhsPub: Uint8Array;
  dhr?: Uint8Array;
  cks?: Uint8Array;
  ckr?: Uint8Array;
  ns: number;
  nr: number;
  pn: number;
  he: boolean;
  /** Header keys (§4.4), only when `he`. */
  hks?: Uint8Array;
  hkr?: Uint8Array;
  nhks?: Uint8Array;
  nhkr?: Uint8Array;
  skipped: SkippedKey[];
  /** Receiving chains with stored keys, oldest first: b64u(DHr), or b64u(HKr) with header encryption. */
  chains: string[];
  /** Kept by the initiator until it decrypts a message from the peer (§3). */
  pendingPrekey?: Uint8Array;
  created: number;
  lastUsed: number;
}

/** HK_A and HK_B of the PQXDH output (§3): pass them to switch header encryption on (both certificates set flag bit1). */
export interface HeaderKeys {
  hkA: Uint8Array;
  hkB: Uint8Array;
}

export const ENC_HEADER_BYTES = 69;
const RATCHET_HEADER_BYTES = 41;
const FLAG_HEADER_ENCRYPTION = 0x01;

/** KDF_RK(rk, dh) of §4.1 → [rk', ck, nhk]. */
export function kdfRk(rk: Uint8Array, dh: Uint8Array): [Uint8Array, Uint8Array, Uint8Array] {
  const o = hkdf({ salt: rk, ikm: dh, info: ascii('umbra/v1/rk'), length: 96 });
  return [o.slice(0, 32), o.slice(32, 64), o.slice(64, 96)];
}

/** KDF_CK(ck) of §4.1 → [mk, ck']. */
export function kdfCk(ck: Uint8Array): [Uint8Array, Uint8Array] {
  return [hmacSha256(ck, Uint8Array.of(1)), hmacSha256(ck, Uint8Array.of(2))];
}

/** MsgKeys(mk) of §4.1. */
export function msgKeys(mk: Uint8Array): { key: Uint8Array; nonce: Uint8Array } {
  const o = hkdf({ salt: new Uint8Array(32), ikm: mk, info: ascii('umbra/v1/mk'), length: 44 });
  return { key: o.slice(0, 32), nonce: o.slice(32, 44) };
}

function checkHeaderKeys(k: HeaderKeys): void {
  if (!(k.hkA instanceof Uint8Array) || k.hkA.length !== 32 || !(k.hkB instanceof Uint8Array) || k.hkB.length !== 32) throw new CryptoError('MALFORMED', 'header keys must be 32 bytes');
}

/** Alice (§4.2). With `headerKeys` the session uses header encryption (§4.4). `dhsSk` fixes the first ratchet key (test vectors only). */
export function initInitiator(p: { rk0: Uint8Array; peerSpk: Uint8Array; self: Uint8Array; peer: Uint8Array; baseKey: Uint8Array; pendingPrekey: Uint8Array; now: number; dhsSk?: Uint8Array; headerKeys?: HeaderKeys }): RatchetState {
  const dhsSk = p.dhsSk ?? generateSecretKey();
  const [rk, cks, nhk] = kdfRk(p.rk0, ecdh(dhsSk, p.peerSpk));
  const base: RatchetState = { v: 1, self: p.self, peer: p.peer, baseKey: p.baseKey, rk, dhsSk, dhsPub: pub(dhsSk), dhr: p.peerSpk, cks, ns: 0, nr: 0, pn: 0, he: false, skipped: [], chains: [], pendingPrekey: p.pendingPrekey, created: p.now, lastUsed: p.now };
  if (!p.headerKeys) return base;
  checkHeaderKeys(p.headerKeys);
  return { ...base, he: true, hks: p.headerKeys.hkA, nhks: nhk, nhkr: p.headerKeys.hkB };
}

/** Bob (§4.2); `headerKeys` as for initInitiator. */
export function initResponder(p: { rk0: Uint8Array; spkSk: Uint8Array; self: Uint8Array; peer: Uint8Array; baseKey: Uint8Array; now: number; headerKeys?: HeaderKeys }): RatchetState {
  const base: RatchetState = { v: 1, self: p.self, peer: p.peer, baseKey: p.baseKey, rk: p.rk0, dhsSk: p.spkSk, dhsPub: pub(p.spkSk), ns: 0, nr: 0, pn: 0, he: false, skipped: [], chains: [], created: p.now, lastUsed: p.now };
  if (!p.headerKeys) return base;
  checkHeaderKeys(p.headerKeys);
  return { ...base, he: true, nhks: p.headerKeys.hkB, nhkr: p.headerKeys.hkA };
}

function header(dh: Uint8Array, pn: number, n: number): Uint8Array {
  return concatBytes(u8(1), dh, u32(pn), u32(n));
}

function ad(sender: Uint8Array, recipient: Uint8Array, headerField: Uint8Array): Uint8Array {
  return concatBytes(ascii('umbra/v1/msg'), u16(SUITE_V1), sender, recipient, headerField);
}

const HEADER_AD = concatBytes(ascii('umbra/v1/hdr'), u16(SUITE_V1));

/** EncHeader = nonce[12] ‖ AES-256-GCM(HK, nonce, "umbra/v1/hdr" ‖ u16 suite, RatchetHeader) (§4.4). */
function encryptHeader(hk: Uint8Array, nonce: Uint8Array, h: Uint8Array): Uint8Array {
  return concatBytes(nonce, aesGcmEncrypt(hk, nonce, HEADER_AD, h));
}

/** The RatchetHeader inside an EncHeader, or undefined when it does not decrypt under `hk`. */
function decryptHeader(hk: Uint8Array, encHeader: Uint8Array): Uint8Array | undefined {
  try {
    return aesGcmDecrypt(hk, encHeader.subarray(0, 12), HEADER_AD, encHeader.subarray(12));
  } catch {
    return undefined;
  }
}

/**
 * Encrypts padded `content`; returns the new state (the input is not modified) and the RatchetMessage.
 * `rand.headerNonce` fixes the EncHeader nonce (test vectors only; otherwise 12 fresh random bytes).
 */
export function ratchetEncrypt(state: RatchetState, content: Uint8Array, now: number, rand: { headerNonce?: Uint8Array } = {}): { state: RatchetState; message: Uint8Array } {
  if (!state.cks) throw new CryptoError('MALFORMED', 'no sending chain yet: the responder must receive first');
  const s = structuredClone(state);
  const [mk, ck] = kdfCk(s.cks!);
  const h = header(s.dhsPub, s.pn, s.ns);
  let headerField = h;
  if (s.he) {
    if (!s.hks) throw new CryptoError('MALFORMED', 'header encryption without a sending header key');
    const nonce = rand.headerNonce ?? randomBytes(12);
    if (nonce.length !== 12) throw new CryptoError('MALFORMED', 'header nonce must be 12 bytes');
    headerField = encryptHeader(s.hks, nonce, h);
  }
  const { key, nonce } = msgKeys(mk);
  const ciphertext = aesGcmEncrypt(key, nonce, ad(s.self, s.peer, headerField), pad(content));
  s.cks = ck;
  s.ns += 1;
  s.lastUsed = now;
  return { state: s, message: concatBytes(u8(1), u8(s.he ? FLAG_HEADER_ENCRYPTION : 0), headerField, u32(ciphertext.length), ciphertext) };
}

/** A RatchetMessage split into its fields; `header` is absent when it is encrypted (flags bit0). */
export interface ParsedRatchetMessage {
  encrypted: boolean;
  header?: ParsedHeader;
  headerField: Uint8Array;
  ciphertext: Uint8Array;
}

interface ParsedHeader {
  dh: Uint8Array;
  pn: number;
  n: number;
}

function parseHeader(bytes: Uint8Array): ParsedHeader {
  const hr = new ByteReader(bytes);
  if (hr.u8() !== 1) throw new CryptoError('UNSUPPORTED_VERSION', 'RatchetHeader version');
  const dh = hr.fixed(32);
  const pn = hr.u32();
  const n = hr.u32();
  hr.end();
  return { dh, pn, n };
}

export function parseRatchetMessage(bytes: Uint8Array): ParsedRatchetMessage {
  const r = new ByteReader(bytes);
  if (r.u8() !== 1) throw new CryptoError('UNSUPPORTED_VERSION', 'RatchetMessage version');
  const flags = r.u8();
  if ((flags & ~FLAG_HEADER_ENCRYPTION) !== 0) throw new CryptoError('MALFORMED', 'unknown RatchetMessage flags');
  const encrypted = flags === FLAG_HEADER_ENCRYPTION;
  const headerField = r.fixed(encrypted ? ENC_HEADER_BYTES : RATCHET_HEADER_BYTES);
  const ciphertext = r.opaque(4);
  r.end();
  return encrypted ? { encrypted, headerField, ciphertext } : { encrypted, header: parseHeader(headerField), headerField, ciphertext };
}

/** SkipMessageKeys(until) of §4.3 on the current receiving chain `chain`. */
function skipTo(s: RatchetState, until: number, now: number, chain: string | undefined): void {
  if (until - s.nr > MAX_SKIP) throw new CryptoError('TOO_MANY_SKIPPED', `message skips more than ${MAX_SKIP} keys`);
  if (!s.ckr || chain === undefined) return;
  while (s.nr < until) {
    const [mk, ck] = kdfCk(s.ckr);
    s.skipped.push({ chain, n: s.nr, mk, t: now });
    if (s.skipped.length > MAX_SKIPPED_KEYS) s.skipped.shift();
    s.ckr = ck;
    s.nr += 1;
  }
}

/** Id of the current receiving chain: b64u(DHr), or b64u(HKr) with header encryption. */
function currentChain(s: RatchetState): string | undefined {
  const id = s.he ? s.hkr : s.dhr;
  return id ? b64uEncode(id) : undefined;
}

/** The DH ratchet step of DR §3.5, plus the header keys of §4.4 when `he`; records the new receiving chain. */
function dhRatchet(s: RatchetState, dh: Uint8Array, dhsSk: Uint8Array | undefined): void {
  s.pn = s.ns;
  s.ns = 0;
  s.nr = 0;
  s.dhr = dh;
  if (s.he) {
    s.hks = s.nhks;
    s.hkr = s.nhkr;
  }
  let nhk: Uint8Array;
  [s.rk, s.ckr, nhk] = kdfRk(s.rk, ecdh(s.dhsSk, s.dhr));
  if (s.he) s.nhkr = nhk;
  s.dhsSk = dhsSk ?? generateSecretKey();
  s.dhsPub = pub(s.dhsSk);
  [s.rk, s.cks, nhk] = kdfRk(s.rk, ecdh(s.dhsSk, s.dhr));
  if (s.he) s.nhks = nhk;
  s.chains.push(b64uEncode(s.he ? s.hkr! : s.dhr));
  while (s.chains.length > MAX_RECEIVER_CHAINS) {
    const oldest = s.chains.shift();
    s.skipped = s.skipped.filter((k) => k.chain !== oldest);
  }
}

/**
 * DR §3.5 RatchetDecrypt (DR §4 with header encryption) with the §4.3 rules. Pure: returns a new
 * state, committed by the caller only after it has what it needs; the input state is never
 * modified, so a failure changes nothing. `rand.dhsSk` fixes the next ratchet key (test vectors only).
 */
export function ratchetDecrypt(state: RatchetState, message: Uint8Array, now: number, rand: { dhsSk?: Uint8Array } = {}): { state: RatchetState; content: Uint8Array } {
  const m = parseRatchetMessage(message);
  if (m.encrypted !== state.he) throw new CryptoError('MALFORMED', 'header-encryption flag does not match the session');
  const s = structuredClone(state);
  s.skipped = s.skipped.filter((k) => now - k.t <= SKIPPED_KEY_TTL_MS);
  const aad = ad(s.peer, s.self, m.headerField);
  const open = (mk: Uint8Array): Uint8Array => {
    const { key, nonce } = msgKeys(mk);
    return unpad(aesGcmDecrypt(key, nonce, aad, m.ciphertext));
  };
  const done = (content: Uint8Array) => {
    s.lastUsed = now;
    delete s.pendingPrekey;
    return { state: s, content };
  };
  const useSkipped = (chain: string, n: number): { state: RatchetState; content: Uint8Array } | undefined => {
    const idx = s.skipped.findIndex((k) => k.chain === chain && k.n === n);
    if (idx < 0) return undefined;
    const content = open(s.skipped[idx]!.mk);
    s.skipped.splice(idx, 1);
    return done(content);
  };

  let h: ParsedHeader;
  let newChain: boolean;
  if (!s.he) {
    h = m.header!;
    const hit = useSkipped(b64uEncode(h.dh), h.n);
    if (hit) return hit;
    newChain = !(s.dhr !== undefined && bytesEqual(s.dhr, h.dh) && s.ckr !== undefined);
  } else {
    // (1) stored skipped keys, one header trial per stored chain
    for (const chain of new Set(s.skipped.map((k) => k.chain))) {
      const plain = decryptHeader(b64uDecode(chain), m.headerField);
      if (!plain) continue;
      const hit = useSkipped(chain, parseHeader(plain).n);
      if (hit) return hit;
    }
    // (2) HKr: same chain; (3) NHKr: DH step; (4) reject
    const cur = s.hkr && s.ckr ? decryptHeader(s.hkr, m.headerField) : undefined;
    const next = cur ? undefined : s.nhkr ? decryptHeader(s.nhkr, m.headerField) : undefined;
    if (!cur && !next) throw new CryptoError('DECRYPT_FAILED', 'header does not decrypt under any header key');
    h = parseHeader((cur ?? next)!);
    newChain = cur === undefined;
  }
  if (newChain) {
    skipTo(s, h.pn, now, currentChain(s));
    dhRatchet(s, h.dh, rand.dhsSk);
  } else if (h.n < s.nr) {
    throw new CryptoError('REPLAY', 'message key already used or never stored');
  }
  skipTo(s, h.n, now, currentChain(s));
  const [mk, ck] = kdfCk(s.ckr!);
  const content = open(mk);
  s.ckr = ck;
  s.nr += 1;
  return done(content);
}

const BYTE_FIELDS = ['self', 'peer', 'baseKey', 'rk', 'dhsSk', 'dhsPub', 'dhr', 'cks', 'ckr', 'hks', 'hkr', 'nhks', 'nhkr', 'pendingPrekey'] as const;
const REQUIRED_BYTE_FIELDS = ['self', 'peer', 'baseKey', 'rk', 'dhsSk', 'dhsPub'] as const;
const KEY_FIELDS = ['rk', 'dhsSk', 'dhsPub', 'dhr', 'cks', 'ckr', 'hks', 'hkr', 'nhks', 'nhkr'] as const;

/** §4.5 serialisation (bytes as b64u); local only, never sent. */
export function serializeRatchetState(s: RatchetState): string {
  const out: Record<string, unknown> = { ...s, he: s.he === true, skipped: s.skipped.map((k) => ({ ...k, mk: b64uEncode(k.mk) })) };
  for (const f of BYTE_FIELDS) if (s[f]) out[f] = b64uEncode(s[f]!);
  return JSON.stringify(out);
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Inverse of serializeRatchetState; anything malformed is CryptoError('MALFORMED'). States written before `he` existed read as `he: false`. */
export function deserializeRatchetState(json: string): RatchetState {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    throw new CryptoError('MALFORMED', 'ratchet state is not JSON');
  }
  if (!o || typeof o !== 'object' || Array.isArray(o)) throw new CryptoError('MALFORMED', 'ratchet state is not an object');
  if (o.v !== 1) throw new CryptoError('MALFORMED', 'ratchet state version');
  for (const f of BYTE_FIELDS) {
    if (o[f] === undefined) continue;
    if (typeof o[f] !== 'string') throw new CryptoError('MALFORMED', `ratchet state field ${f}`);
    o[f] = b64uDecode(o[f] as string);
  }
  for (const f of REQUIRED_BYTE_FIELDS) if (!(o[f] instanceof Uint8Array)) throw new CryptoError('MALFORMED', `ratchet state lacks ${f}`);
  for (const f of KEY_FIELDS) if (o[f] !== undefined && (o[f] as Uint8Array).length !== 32) throw new CryptoError('MALFORMED', `ratchet state field ${f} must be 32 bytes`);
  if (o.he === undefined) o.he = false;
  if (typeof o.he !== 'boolean') throw new CryptoError('MALFORMED', 'ratchet state field he');
  if (o.he && (o.nhks === undefined || o.nhkr === undefined)) throw new CryptoError('MALFORMED', 'header-encrypted ratchet state lacks its next header keys');
  if (!o.he && (o.hks !== undefined || o.hkr !== undefined || o.nhks !== undefined || o.nhkr !== undefined)) throw new CryptoError('MALFORMED', 'header keys in a session without header encryption');
  for (const f of ['ns', 'nr', 'pn', 'created', 'lastUsed']) if (!isCount(o[f])) throw new CryptoError('MALFORMED', `ratchet state field ${f}`);
  if (!Array.isArray(o.chains) || !o.chains.every((c) => typeof c === 'string')) throw new CryptoError('MALFORMED', 'ratchet state chains');
  if (!Array.isArray(o.skipped)) throw new CryptoError('MALFORMED', 'ratchet state skipped keys');
  o.skipped = (o.skipped as unknown[]).map((k) => {
    const e = k as Record<string, unknown> | null;
    if (!e || typeof e !== 'object' || typeof e.chain !== 'string' || !isCount(e.n) || typeof e.mk !== 'string' || !isCount(e.t)) throw new CryptoError('MALFORMED', 'ratchet state skipped key');
    const mk = b64uDecode(e.mk);
    if (mk.length !== 32) throw new CryptoError('MALFORMED', 'skipped message key must be 32 bytes');
    return { chain: e.chain, n: e.n, mk, t: e.t };
  });
  return o as unknown as RatchetState;
}

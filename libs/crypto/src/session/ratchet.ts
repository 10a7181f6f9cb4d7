import { ByteReader, b64uDecode, b64uEncode, concatBytes, u16, u32, u8 } from '../bytes';
import { CryptoError } from '../errors';
import { pad, unpad } from '../content';
import { SUITE_V1, aesGcmDecrypt, aesGcmEncrypt, ascii, ecdh, generateSecretKey, hkdf, hmacSha256, pub } from '../primitives';

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

/** One Double Ratchet session (§4.5 fields; header encryption is not implemented yet). */
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
  skipped: SkippedKey[];
  chains: string[];
  /** Kept by the initiator until it decrypts a message from the peer (§3). */
  pendingPrekey?: Uint8Array;
  created: number;
  lastUsed: number;
}

function kdfRk(rk: Uint8Array, dh: Uint8Array): [Uint8Array, Uint8Array, Uint8Array] {
  const o = hkdf({ salt: rk, ikm: dh, info: ascii('umbra/v1/rk'), length: 96 });
  return [o.slice(0, 32), o.slice(32, 64), o.slice(64, 96)];
}

function kdfCk(ck: Uint8Array): [Uint8Array, Uint8Array] {
  return [hmacSha256(ck, Uint8Array.of(1)), hmacSha256(ck, Uint8Array.of(2))];
}

function msgKeys(mk: Uint8Array): { key: Uint8Array; nonce: Uint8Array } {
  const o = hkdf({ salt: new Uint8Array(32), ikm: mk, info: ascii('umbra/v1/mk'), length: 44 });
  return { key: o.slice(0, 32), nonce: o.slice(32, 44) };
}

export function initInitiator(p: { rk0: Uint8Array; peerSpk: Uint8Array; self: Uint8Array; peer: Uint8Array; baseKey: Uint8Array; pendingPrekey: Uint8Array; now: number; dhsSk?: Uint8Array }): RatchetState {
  const dhsSk = p.dhsSk ?? generateSecretKey();
  const [rk, cks] = kdfRk(p.rk0, ecdh(dhsSk, p.peerSpk));
  return { v: 1, self: p.self, peer: p.peer, baseKey: p.baseKey, rk, dhsSk, dhsPub: pub(dhsSk), dhr: p.peerSpk, cks, ns: 0, nr: 0, pn: 0, skipped: [], chains: [], pendingPrekey: p.pendingPrekey, created: p.now, lastUsed: p.now };
}

export function initResponder(p: { rk0: Uint8Array; spkSk: Uint8Array; self: Uint8Array; peer: Uint8Array; baseKey: Uint8Array; now: number }): RatchetState {
  return { v: 1, self: p.self, peer: p.peer, baseKey: p.baseKey, rk: p.rk0, dhsSk: p.spkSk, dhsPub: pub(p.spkSk), ns: 0, nr: 0, pn: 0, skipped: [], chains: [], created: p.now, lastUsed: p.now };
}

function header(dh: Uint8Array, pn: number, n: number): Uint8Array {
  return concatBytes(u8(1), dh, u32(pn), u32(n));
}

function ad(sender: Uint8Array, recipient: Uint8Array, headerField: Uint8Array): Uint8Array {
  return concatBytes(ascii('umbra/v1/msg'), u16(SUITE_V1), sender, recipient, headerField);
}

/** Encrypts padded `content`; returns the new state (the input is not modified) and the RatchetMessage. */
export function ratchetEncrypt(state: RatchetState, content: Uint8Array, now: number): { state: RatchetState; message: Uint8Array } {
  if (!state.cks) throw new CryptoError('MALFORMED', 'no sending chain yet: the responder must receive first');
  const s = structuredClone(state);
  const [mk, ck] = kdfCk(s.cks!);
  const h = header(s.dhsPub, s.pn, s.ns);
  const { key, nonce } = msgKeys(mk);
  const ciphertext = aesGcmEncrypt(key, nonce, ad(s.self, s.peer, h), pad(content));
  s.cks = ck;
  s.ns += 1;
  s.lastUsed = now;
  return { state: s, message: concatBytes(u8(1), u8(0), h, u32(ciphertext.length), ciphertext) };
}

interface ParsedMessage {
  dh: Uint8Array;
  pn: number;
  n: number;
  headerField: Uint8Array;
  ciphertext: Uint8Array;
}

export function parseRatchetMessage(bytes: Uint8Array): ParsedMessage {
  const r = new ByteReader(bytes);
  if (r.u8() !== 1) throw new CryptoError('UNSUPPORTED_VERSION', 'RatchetMessage version');
  const flags = r.u8();
  if (flags !== 0) throw new CryptoError('MALFORMED', flags === 1 ? 'header encryption is not supported by this session' : 'unknown flags');
  const headerField = r.fixed(41);
  const hr = new ByteReader(headerField);
  if (hr.u8() !== 1) throw new CryptoError('UNSUPPORTED_VERSION', 'RatchetHeader version');
  const dh = hr.fixed(32);
  const pn = hr.u32();
  const n = hr.u32();
  const ciphertext = r.opaque(4);
  r.end();
  return { dh, pn, n, headerField, ciphertext };
}

function skipTo(s: RatchetState, until: number, now: number): void {
  if (until - s.nr > MAX_SKIP) throw new CryptoError('TOO_MANY_SKIPPED', `message skips more than ${MAX_SKIP} keys`);
  if (!s.ckr || !s.dhr) return;
  const chain = b64uEncode(s.dhr);
  while (s.nr < until) {
    const [mk, ck] = kdfCk(s.ckr);
    s.skipped.push({ chain, n: s.nr, mk, t: now });
    if (s.skipped.length > MAX_SKIPPED_KEYS) s.skipped.shift();
    s.ckr = ck;
    s.nr += 1;
  }
}

/**
 * DR §3.5 RatchetDecrypt with the §4.3 rules. Pure: returns a new state, committed by the caller
 * only after it has what it needs; the input state is never modified, so a failure changes nothing.
 */
export function ratchetDecrypt(state: RatchetState, message: Uint8Array, now: number): { state: RatchetState; content: Uint8Array } {
  const m = parseRatchetMessage(message);
  const s = structuredClone(state);
  s.skipped = s.skipped.filter((k) => now - k.t <= SKIPPED_KEY_TTL_MS);
  const aad = ad(s.peer, s.self, m.headerField);
  const chainId = b64uEncode(m.dh);
  const open = (mk: Uint8Array): Uint8Array => {
    const { key, nonce } = msgKeys(mk);
    return unpad(aesGcmDecrypt(key, nonce, aad, m.ciphertext));
  };

  const idx = s.skipped.findIndex((k) => k.chain === chainId && k.n === m.n);
  if (idx >= 0) {
    const content = open(s.skipped[idx]!.mk);
    s.skipped.splice(idx, 1);
    s.lastUsed = now;
    delete s.pendingPrekey;
    return { state: s, content };
  }
  const sameChain = s.dhr !== undefined && b64uEncode(s.dhr) === chainId && s.ckr !== undefined;
  if (!sameChain) {
    skipTo(s, m.pn, now);
    s.pn = s.ns;
    s.ns = 0;
    s.nr = 0;
    s.dhr = m.dh;
    [s.rk, s.ckr] = kdfRk(s.rk, ecdh(s.dhsSk, s.dhr));
    s.dhsSk = generateSecretKey();
    s.dhsPub = pub(s.dhsSk);
    [s.rk, s.cks] = kdfRk(s.rk, ecdh(s.dhsSk, s.dhr));
    s.chains.push(chainId);
    while (s.chains.length > MAX_RECEIVER_CHAINS) {
      const oldest = s.chains.shift();
      s.skipped = s.skipped.filter((k) => k.chain !== oldest);
    }
  } else if (m.n < s.nr) {
    throw new CryptoError('REPLAY', 'message key already used or never stored');
  }
  skipTo(s, m.n, now);
  const [mk, ck] = kdfCk(s.ckr!);
  const content = open(mk);
  s.ckr = ck;
  s.nr += 1;
  s.lastUsed = now;
  delete s.pendingPrekey;
  return { state: s, content };
}

const BYTE_FIELDS = ['self', 'peer', 'baseKey', 'rk', 'dhsSk', 'dhsPub', 'dhr', 'cks', 'ckr', 'pendingPrekey'] as const;

/** §4.5 serialisation (bytes as b64u); local only, never sent. */
export function serializeRatchetState(s: RatchetState): string {
  const out: Record<string, unknown> = { ...s, skipped: s.skipped.map((k) => ({ ...k, mk: b64uEncode(k.mk) })) };
  for (const f of BYTE_FIELDS) if (s[f]) out[f] = b64uEncode(s[f]!);
  return JSON.stringify(out);
}

export function deserializeRatchetState(json: string): RatchetState {
  const o = JSON.parse(json) as Record<string, unknown>;
  if (o.v !== 1) throw new CryptoError('MALFORMED', 'ratchet state version');
  for (const f of BYTE_FIELDS) if (typeof o[f] === 'string') o[f] = b64uDecode(o[f] as string);
  o.skipped = (o.skipped as { chain: string; n: number; mk: string; t: number }[]).map((k) => ({ ...k, mk: b64uDecode(k.mk) }));
  return o as unknown as RatchetState;
}

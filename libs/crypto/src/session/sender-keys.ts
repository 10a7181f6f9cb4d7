import { ByteReader, b64uDecode, b64uEncode, concatBytes, u16, u32, u8 } from '../bytes';
import { CryptoError } from '../errors';
import { pad, unpad } from '../content';
import { SUITE_V1, aesGcmDecrypt, aesGcmEncrypt, ascii, generateSecretKey, hkdf, hmacSha256, pub, randomBytes, sign, verify } from '../primitives';

/** PROTOCOL.md §6 bounds. */
export const MAX_SENDER_KEY_JUMP = 2000;
export const MAX_SENDER_KEY_SKIPPED = 2000;

/** A sending chain (own) or a receiving chain (from an SKDM). `ssk` only on our own chains. */
export interface SenderChain {
  gid: Uint8Array;
  epoch: number;
  chainId: number;
  it: number;
  ck: Uint8Array;
  sigPk: Uint8Array;
  ssk?: Uint8Array;
  skipped: { it: number; mk: Uint8Array }[];
  created: number;
  sent: number;
}

/** `rand` fixes the chain's secrets (test vectors only). */
export function newSenderChain(gid: Uint8Array, epoch: number, now: number, rand: { ssk?: Uint8Array; chainId?: number; ck?: Uint8Array } = {}): SenderChain {
  const ssk = rand.ssk ?? generateSecretKey();
  const idBytes = randomBytes(4);
  const chainId = rand.chainId ?? new DataView(idBytes.buffer).getUint32(0);
  return { gid, epoch, chainId, it: 0, ck: rand.ck ?? randomBytes(32), sigPk: pub(ssk), ssk, skipped: [], created: now, sent: 0 };
}

/** The SKDM fields (Content k:"skdm") for distributing a chain at its current iteration. */
export function skdmOf(c: SenderChain): { gid: string; epoch: number; chain_id: number; it: number; ck: string; sig_pk: string } {
  return { gid: b64uEncode(c.gid), epoch: c.epoch, chain_id: c.chainId, it: c.it, ck: b64uEncode(c.ck), sig_pk: b64uEncode(c.sigPk) };
}

export function chainFromSkdm(s: { gid: unknown; epoch: unknown; chain_id: unknown; it: unknown; ck: unknown; sig_pk: unknown }, now: number): SenderChain {
  const u32ok = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffff_ffff;
  if (typeof s.gid !== 'string' || typeof s.ck !== 'string' || typeof s.sig_pk !== 'string' || !u32ok(s.epoch) || !u32ok(s.chain_id) || !u32ok(s.it)) {
    throw new CryptoError('MALFORMED', 'bad SKDM');
  }
  const gid = b64uDecode(s.gid);
  const ck = b64uDecode(s.ck);
  const sigPk = b64uDecode(s.sig_pk);
  if (gid.length !== 32 || ck.length !== 32 || sigPk.length !== 32) throw new CryptoError('MALFORMED', 'bad SKDM field length');
  return { gid, epoch: s.epoch, chainId: s.chain_id, it: s.it, ck, sigPk, skipped: [], created: now, sent: 0 };
}

function step(ck: Uint8Array): { mk: Uint8Array; next: Uint8Array } {
  return { mk: hmacSha256(ck, Uint8Array.of(1)), next: hmacSha256(ck, Uint8Array.of(2)) };
}

function keys(mk: Uint8Array): { key: Uint8Array; nonce: Uint8Array } {
  const o = hkdf({ salt: new Uint8Array(32), ikm: mk, info: ascii('umbra/v1/skmk'), length: 44 });
  return { key: o.slice(0, 32), nonce: o.slice(32, 44) };
}

function ad(gid: Uint8Array, epoch: number, sender: Uint8Array, chainId: number, it: number): Uint8Array {
  return concatBytes(ascii('umbra/v1/skmsg'), u16(SUITE_V1), gid, u32(epoch), sender, u32(chainId), u32(it));
}

/** Encrypts with the chain's current key (iteration `it`), then advances it. `sender` = Addr(sender). */
export function senderKeyEncrypt(chain: SenderChain, sender: Uint8Array, content: Uint8Array, aux?: Uint8Array): { chain: SenderChain; message: Uint8Array } {
  if (!chain.ssk) throw new CryptoError('MALFORMED', 'not our chain');
  const { mk, next } = step(chain.ck);
  const { key, nonce } = keys(mk);
  const ct = aesGcmEncrypt(key, nonce, ad(chain.gid, chain.epoch, sender, chain.chainId, chain.it), pad(content));
  const body = concatBytes(u8(1), u16(SUITE_V1), chain.gid, u32(chain.epoch), u32(chain.chainId), u32(chain.it), u32(ct.length), ct);
  return { chain: { ...chain, ck: next, it: chain.it + 1, sent: chain.sent + 1 }, message: concatBytes(body, sign(chain.ssk, 'sender-key', body, aux)) };
}

export interface SenderKeyHeader {
  gid: Uint8Array;
  epoch: number;
  chainId: number;
  it: number;
  ct: Uint8Array;
  body: Uint8Array;
  signature: Uint8Array;
}

export function parseSenderKeyMessage(bytes: Uint8Array): SenderKeyHeader {
  const r = new ByteReader(bytes);
  if (r.u8() !== 1) throw new CryptoError('UNSUPPORTED_VERSION', 'SenderKeyMessage version');
  if (r.u16() !== SUITE_V1) throw new CryptoError('UNSUPPORTED_SUITE', 'SenderKeyMessage suite');
  const gid = r.fixed(32);
  const epoch = r.u32();
  const chainId = r.u32();
  const it = r.u32();
  const ct = r.opaque(4);
  const body = r.range(0, r.position);
  const signature = r.fixed(64);
  r.end();
  return { gid, epoch, chainId, it, ct, body, signature };
}

/** Verifies the signature before deriving anything; returns the advanced chain (input untouched). */
export function senderKeyDecrypt(chain: SenderChain, sender: Uint8Array, msg: SenderKeyHeader): { chain: SenderChain; content: Uint8Array } {
  if (!verify(chain.sigPk, 'sender-key', msg.body, msg.signature)) throw new CryptoError('BAD_SIGNATURE', 'sender key signature');
  const c: SenderChain = { ...chain, skipped: [...chain.skipped] };
  const aad = ad(c.gid, c.epoch, sender, c.chainId, msg.it);
  const open = (mk: Uint8Array) => {
    const { key, nonce } = keys(mk);
    return unpad(aesGcmDecrypt(key, nonce, aad, msg.ct));
  };
  if (msg.it < c.it) {
    const i = c.skipped.findIndex((k) => k.it === msg.it);
    if (i < 0) throw new CryptoError('REPLAY', 'sender key iteration already used');
    const content = open(c.skipped[i]!.mk);
    c.skipped.splice(i, 1);
    return { chain: c, content };
  }
  if (msg.it - c.it > MAX_SENDER_KEY_JUMP) throw new CryptoError('TOO_MANY_SKIPPED', 'sender key jump too large');
  while (c.it < msg.it) {
    const { mk, next } = step(c.ck);
    c.skipped.push({ it: c.it, mk });
    if (c.skipped.length > MAX_SENDER_KEY_SKIPPED) c.skipped.shift();
    c.ck = next;
    c.it += 1;
  }
  const { mk, next } = step(c.ck);
  const content = open(mk);
  c.ck = next;
  c.it += 1;
  return { chain: c, content };
}

export function serializeSenderChain(c: SenderChain): string {
  return JSON.stringify({
    ...c,
    gid: b64uEncode(c.gid),
    ck: b64uEncode(c.ck),
    sigPk: b64uEncode(c.sigPk),
    ...(c.ssk ? { ssk: b64uEncode(c.ssk) } : {}),
    skipped: c.skipped.map((k) => ({ it: k.it, mk: b64uEncode(k.mk) })),
  });
}

export function deserializeSenderChain(json: string): SenderChain {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    throw new CryptoError('MALFORMED', 'sender chain state is not JSON');
  }
  if (!o || typeof o !== 'object' || Array.isArray(o)) throw new CryptoError('MALFORMED', 'sender chain state is not an object');
  const int = (k: string) => {
    if (!Number.isSafeInteger(o[k]) || (o[k] as number) < 0) throw new CryptoError('MALFORMED', `sender chain state field ${k}`);
    return o[k] as number;
  };
  const bytes = (k: string) => {
    if (typeof o[k] !== 'string') throw new CryptoError('MALFORMED', `sender chain state field ${k}`);
    return b64uDecode(o[k] as string);
  };
  if (!Array.isArray(o.skipped)) throw new CryptoError('MALFORMED', 'sender chain state field skipped');
  const skipped = (o.skipped as unknown[]).map((k) => {
    const e = k as { it?: unknown; mk?: unknown } | null;
    if (!e || !Number.isSafeInteger(e.it) || typeof e.mk !== 'string') throw new CryptoError('MALFORMED', 'sender chain skipped key');
    return { it: e.it as number, mk: b64uDecode(e.mk) };
  });
  return {
    gid: bytes('gid'),
    epoch: int('epoch'),
    chainId: int('chainId'),
    it: int('it'),
    ck: bytes('ck'),
    sigPk: bytes('sigPk'),
    ...(o.ssk !== undefined ? { ssk: bytes('ssk') } : {}),
    skipped,
    created: int('created'),
    sent: int('sent'),
  };
}

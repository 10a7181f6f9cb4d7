import { b64uDecode, hexDecode as fromHex, hexEncode } from '../bytes';
import { decodeAccountId, parseAuthResponse, parseDeviceCertificate, parseSignedDeviceList, parseSignedHandleClaim, verifySignedDeviceList, verifySignedHandleClaim } from '../identity';
import { parsePreKeyBundle, parsePreKeyRecord } from '../prekeys';
import { decodeContent, unpad } from '../content';
import { verifySafetyQr } from '../safety-number';
import { parsePreKeyMessage } from '../session/pqxdh';
import { deserializeRatchetState, initResponder, parseRatchetMessage, ratchetDecrypt, serializeRatchetState } from '../session/ratchet';
import { chainFromSkdm, deserializeSenderChain, newSenderChain, parseSenderKeyMessage, senderKeyDecrypt, serializeSenderChain, skdmOf } from '../session/sender-keys';
import { openProvisioningMessage, parseLinkQr, type PendingLink } from '../linking';
import { parseKtLeaf, parseSth } from '../kt';
import { ratchetInputs, senderKeyInputs, T0 } from './vectors';

/**
 * Every decoder of wire or stored input in this library, for the fuzz test (decoders.fuzz.spec.ts), and the
 * seed corpus it mutates, built from the §14 vectors (libs/crypto/vectors/*.json). Decoders that need
 * context (a pending link, a ratchet or sender-key state, an account key) get a fixed one from the vectors.
 */
type Vectors = Record<string, unknown>;

export interface FuzzContext {
  pending: PendingLink;
  aik: Uint8Array;
  qr: string;
}

export function fuzzContext(vectors: Record<string, Vectors>): FuzzContext {
  const linking = (vectors.identity as { linking: { new_device: Record<string, string | number>; link_qr: string } }).linking;
  const qr = linking.link_qr;
  const pending: PendingLink = { ...parseLinkQr(qr), ephSk: fromHex(linking.new_device.eph_sk as string), dikSk: fromHex(linking.new_device.dik_sk as string) };
  const safety = vectors['safety-numbers'] as { aik_a: string; qr_a: string };
  return { pending, aik: fromHex(safety.aik_a), qr: safety.qr_a };
}

export function byteDecoders(ctx: FuzzContext): Record<string, (b: Uint8Array) => unknown> {
  const r = ratchetInputs(false);
  const bob = () => initResponder({ rk0: r.rk0, spkSk: r.spkSk, self: r.addrB, peer: r.addrA, baseKey: new Uint8Array(32), now: T0 });
  const s = senderKeyInputs();
  const rx = () => chainFromSkdm(skdmOf(newSenderChain(s.gid, s.epoch, T0, { ssk: s.ssk, chainId: s.chainId, ck: s.ck })), T0);
  return {
    parseDeviceCertificate,
    parseSignedDeviceList,
    verifySignedDeviceList,
    parseSignedHandleClaim,
    verifySignedHandleClaim: (b) => verifySignedHandleClaim(b, ctx.aik),
    parseAuthResponse,
    parsePreKeyRecord,
    parsePreKeyBundle,
    parseKtLeaf,
    parseSth,
    parsePreKeyMessage,
    parseRatchetMessage,
    ratchetDecrypt: (b) => ratchetDecrypt(bob(), b, T0),
    parseSenderKeyMessage,
    senderKeyDecrypt: (b) => senderKeyDecrypt(rx(), s.sender, parseSenderKeyMessage(b)),
    decodeContent,
    unpad,
    openProvisioningMessage: (b) => openProvisioningMessage(b, ctx.pending),
  };
}

export function stringDecoders(ctx: FuzzContext): Record<string, (s: string) => unknown> {
  return {
    b64uDecode,
    decodeAccountId,
    parseLinkQr,
    verifySafetyQr: (s) => verifySafetyQr(ctx.qr, s),
    deserializeRatchetState,
    deserializeSenderChain,
  };
}

/** Extra string seeds the vectors do not hold as strings: serialized states. */
function stateSeeds(): Record<string, string[]> {
  const r = ratchetInputs(false);
  const s = senderKeyInputs();
  const st = initResponder({ rk0: r.rk0, spkSk: r.spkSk, self: r.addrB, peer: r.addrA, baseKey: new Uint8Array(32), now: T0 });
  return {
    deserializeRatchetState: [serializeRatchetState(st)],
    deserializeSenderChain: [serializeSenderChain(newSenderChain(s.gid, s.epoch, T0, { ssk: s.ssk, chainId: s.chainId, ck: s.ck }))],
  };
}

function strings(v: unknown, out: string[]): string[] {
  if (typeof v === 'string') out.push(v);
  else if (Array.isArray(v)) for (const x of v) strings(x, out);
  else if (v && typeof v === 'object') for (const x of Object.values(v)) strings(x, out);
  return out;
}

function accepts(f: (x: never) => unknown, x: unknown): boolean {
  try {
    f(x as never);
    return true;
  } catch {
    return false;
  }
}

const MAX_SEEDS = 24;
const MAX_SEED_BYTES = 16 * 1024;

/**
 * The seed corpus: for each decoder, the vector values (hex, base64url or plain strings) it accepts,
 * in vector order, at most MAX_SEEDS each. Deterministic, so a test can check the committed copy is current.
 */
export function buildFuzzCorpus(vectors: Record<string, Vectors>): Record<string, string[]> {
  const ctx = fuzzContext(vectors);
  const all = [...new Set(Object.keys(vectors).sort().flatMap((k) => strings(vectors[k], [])))];
  const candidates: Uint8Array[] = [];
  for (const s of all) {
    if (s.length >= 2 && s.length % 2 === 0 && s.length <= MAX_SEED_BYTES * 2 && /^[0-9a-f]+$/.test(s)) candidates.push(fromHex(s));
    else if (s.length >= 8 && /^[A-Za-z0-9_-]+$/.test(s) && accepts(b64uDecode, s)) candidates.push(b64uDecode(s));
  }
  const corpus: Record<string, string[]> = {};
  for (const [name, f] of Object.entries(byteDecoders(ctx))) {
    corpus[name] = [...new Set(candidates.filter((b) => accepts(f, b)).map(hexEncode))].slice(0, MAX_SEEDS);
  }
  const extra = stateSeeds();
  for (const [name, f] of Object.entries(stringDecoders(ctx))) {
    corpus[name] = [...new Set([...all.filter((s) => s.length <= MAX_SEED_BYTES && accepts(f, s)), ...(extra[name] ?? [])])].slice(0, MAX_SEEDS);
  }
  return corpus;
}

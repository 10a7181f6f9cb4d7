/**
 * SFrame (RFC 9605) against the RFC's Appendix C vectors (libs/crypto/vectors/published/sframe-test-vectors.json,
 * unmodified from sframe-wg/sframe commit 025d568 as cited by the RFC; IETF Trust, Revised BSD: LICENSE-sframe),
 * then the context's counters, replay window and tamper rejection.
 */
import { readFileSync } from 'node:fs';
import { concatBytes, hexDecode, hexEncode } from './bytes';
import { CryptoError, type CryptoErrorCode } from './errors';
import { generateSecretKey, pub, randomBytes } from './primitives';
import {
  SFRAME_AES_128_GCM_SHA256_128,
  SFRAME_AES_256_GCM_SHA512_128,
  SFRAME_MAX_VALUE,
  SframeContext,
  decodeSframeHeader,
  deriveSframeKeyMaterial,
  encodeSframeHeader,
  sframeAeadDecrypt,
  sframeAeadEncrypt,
  sframeEncryptFrame,
  sframeKeysForCall,
  sframeLabels,
  sframeNonce,
  type SframeCipherSuite,
} from './sframe';

interface HeaderVector {
  kid: bigint;
  ctr: bigint;
  encoded: string;
}
interface AeadVector {
  cipher_suite: bigint;
  key: string;
  enc_key: string;
  auth_key: string;
  nonce: string;
  aad: string;
  pt: string;
  ct: string;
}
interface SframeVector {
  cipher_suite: bigint;
  kid: bigint;
  ctr: bigint;
  base_key: string;
  sframe_key_label: string;
  sframe_salt_label: string;
  sframe_secret: string;
  sframe_key: string;
  sframe_salt: string;
  metadata: string;
  nonce: string;
  aad: string;
  pt: string;
  ct: string;
}
interface VectorFile {
  header: HeaderVector[];
  aes_ctr_hmac: AeadVector[];
  sframe: SframeVector[];
}

// KIDs and CTRs go up to 2⁶⁴ − 1, past what a JS number holds: every number is read from its source text.
type Reviver = (key: string, value: unknown, context: { source?: string }) => unknown;
const bigintReviver: Reviver = (_k, value, context) => (typeof value === 'number' && context.source !== undefined ? BigInt(context.source) : value);
const vectors = JSON.parse(
  readFileSync(`${process.cwd()}/libs/crypto/vectors/published/sframe-test-vectors.json`, 'utf8'),
  bigintReviver as unknown as Parameters<typeof JSON.parse>[1],
) as VectorFile;

const h = hexDecode;
const suiteOf = (v: bigint): SframeCipherSuite => Number(v) as SframeCipherSuite;

function codeOf(f: () => unknown): CryptoErrorCode | 'ok' {
  try {
    f();
    return 'ok';
  } catch (e) {
    if (e instanceof CryptoError) return e.code;
    throw e;
  }
}

describe('RFC 9605 Appendix C vectors', () => {
  it('has every published vector (a shrunken file would hide a missing check)', () => {
    expect(vectors.header).toHaveLength(289);
    expect(vectors.aes_ctr_hmac).toHaveLength(3);
    expect(vectors.sframe.map((v) => Number(v.cipher_suite))).toEqual([1, 2, 3, 4, 5]);
    expect(vectors.header.at(-1)!.ctr).toBe(SFRAME_MAX_VALUE);
  });

  it('C.1: encodes and decodes every header', () => {
    for (const v of vectors.header) {
      expect(hexEncode(encodeSframeHeader(v.kid, v.ctr))).toBe(v.encoded);
      const frame = concatBytes(h(v.encoded), Uint8Array.of(0xaa, 0xbb));
      expect(decodeSframeHeader(frame)).toEqual({ kid: v.kid, ctr: v.ctr, length: v.encoded.length / 2 });
    }
  });

  it('C.2: the AES-CTR + HMAC AEAD for suites 1–3', () => {
    for (const v of vectors.aes_ctr_hmac) {
      const suite = suiteOf(v.cipher_suite);
      expect(hexEncode(h(v.key).subarray(0, 16))).toBe(v.enc_key);
      expect(hexEncode(h(v.key).subarray(16))).toBe(v.auth_key);
      expect(hexEncode(sframeAeadEncrypt(suite, h(v.key), h(v.nonce), h(v.aad), h(v.pt)))).toBe(v.ct);
      expect(hexEncode(sframeAeadDecrypt(suite, h(v.key), h(v.nonce), h(v.aad), h(v.ct)))).toBe(v.pt);
    }
  });

  it('C.3: key derivation, nonce, AAD and frame encryption for every suite, through the context too', () => {
    for (const v of vectors.sframe) {
      const suite = suiteOf(v.cipher_suite);
      const labels = sframeLabels(suite, v.kid);
      expect(hexEncode(labels.keyLabel)).toBe(v.sframe_key_label);
      expect(hexEncode(labels.saltLabel)).toBe(v.sframe_salt_label);
      const km = deriveSframeKeyMaterial(suite, v.kid, h(v.base_key));
      expect(hexEncode(km.secret)).toBe(v.sframe_secret);
      expect(hexEncode(km.key)).toBe(v.sframe_key);
      expect(hexEncode(km.salt)).toBe(v.sframe_salt);
      expect(hexEncode(sframeNonce(km.salt, v.ctr))).toBe(v.nonce);
      expect(hexEncode(concatBytes(encodeSframeHeader(v.kid, v.ctr), h(v.metadata)))).toBe(v.aad);
      expect(hexEncode(sframeEncryptFrame(suite, km, v.kid, v.ctr, h(v.pt), h(v.metadata)))).toBe(v.ct);

      const sender = new SframeContext({ suite });
      sender.addSendKey(v.kid, h(v.base_key), v.ctr);
      expect(hexEncode(sender.encrypt(v.kid, h(v.pt), h(v.metadata)))).toBe(v.ct);
      expect(sender.nextCounter(v.kid)).toBe(v.ctr + 1n);
      const receiver = new SframeContext({ suite });
      receiver.addReceiveKey(v.kid, h(v.base_key));
      expect(receiver.decrypt(h(v.ct), h(v.metadata))).toEqual({ kid: v.kid, ctr: v.ctr, plaintext: h(v.pt) });
    }
  });
});

describe('SFrame header', () => {
  it('rejects truncated and non-minimal encodings', () => {
    expect(codeOf(() => decodeSframeHeader(new Uint8Array(0)))).toBe('MALFORMED');
    expect(codeOf(() => decodeSframeHeader(h('0f01')))).toBe('MALFORMED');
    expect(codeOf(() => decodeSframeHeader(h('90')))).toBe('MALFORMED');
    expect(codeOf(() => decodeSframeHeader(h('0807')))).toBe('MALFORMED');
    expect(codeOf(() => decodeSframeHeader(h('09000a')))).toBe('MALFORMED');
    expect(codeOf(() => decodeSframeHeader(h('800700')))).toBe('MALFORMED');
    expect(codeOf(() => decodeSframeHeader(h('0808')))).toBe('ok');
  });

  it('refuses KID and CTR outside u64', () => {
    expect(codeOf(() => encodeSframeHeader(-1, 0))).toBe('MALFORMED');
    expect(codeOf(() => encodeSframeHeader(0, SFRAME_MAX_VALUE + 1n))).toBe('MALFORMED');
    expect(codeOf(() => encodeSframeHeader(0.5, 0))).toBe('MALFORMED');
    expect(codeOf(() => encodeSframeHeader(2 ** 53, 0))).toBe('MALFORMED');
  });
});

describe('SframeContext', () => {
  const baseKey = randomBytes(32);
  const pair = (suite: SframeCipherSuite = SFRAME_AES_256_GCM_SHA512_128, kid = 7, replayWindow?: number) => {
    const tx = new SframeContext({ suite });
    tx.addSendKey(kid, baseKey);
    const rx = new SframeContext({ suite, ...(replayWindow ? { replayWindow } : {}) });
    rx.addReceiveKey(kid, baseKey);
    return { tx, rx };
  };

  it('uses AES_256_GCM_SHA512_128 (0x0005) by default and a monotonic CTR per sending KID', () => {
    const { tx, rx } = pair();
    expect(tx.suite).toBe(SFRAME_AES_256_GCM_SHA512_128);
    for (let i = 0n; i < 10n; i++) {
      const frame = tx.encrypt(7, Uint8Array.of(Number(i)));
      expect(decodeSframeHeader(frame)).toMatchObject({ kid: 7n, ctr: i });
      expect(rx.decrypt(frame).plaintext).toEqual(Uint8Array.of(Number(i)));
    }
    expect(tx.nextCounter(7)).toBe(10n);
  });

  it('rejects any flipped bit of header, ciphertext or tag, and forged frames do not move the replay window', () => {
    for (const suite of [SFRAME_AES_256_GCM_SHA512_128, SFRAME_AES_128_GCM_SHA256_128, 0x0001, 0x0003] as const) {
      const { tx, rx } = pair(suite, 300);
      tx.encrypt(300, randomBytes(5));
      const metadata = randomBytes(6);
      const frame = tx.encrypt(300, randomBytes(40), metadata);
      const codes = new Set<string>();
      for (let bit = 0; bit < frame.length * 8; bit++) {
        const bad = frame.slice();
        bad[bit >> 3]! ^= 1 << (bit & 7);
        const code = codeOf(() => rx.decrypt(bad, metadata));
        expect([bit, code]).not.toEqual([bit, 'ok']);
        codes.add(code);
      }
      expect(codes.has('DECRYPT_FAILED')).toBe(true);
      expect(codeOf(() => rx.decrypt(frame, metadata.subarray(1)))).toBe('DECRYPT_FAILED');
      expect(codeOf(() => rx.decrypt(frame))).toBe('DECRYPT_FAILED');
      expect(codeOf(() => rx.decrypt(frame.subarray(0, frame.length - 1), metadata))).toBe('DECRYPT_FAILED');
      expect(rx.decrypt(frame, metadata).ctr).toBe(1n);
    }
  });

  it('fails for an unknown KID, a wrong key under the right KID, and a sender-only KID', () => {
    const { tx } = pair();
    const frame = tx.encrypt(7, randomBytes(20));
    const stranger = new SframeContext();
    stranger.addReceiveKey(8, baseKey);
    expect(codeOf(() => stranger.decrypt(frame))).toBe('BAD_KEY');
    const wrongKey = new SframeContext();
    wrongKey.addReceiveKey(7, randomBytes(32));
    expect(codeOf(() => wrongKey.decrypt(frame))).toBe('DECRYPT_FAILED');
    expect(codeOf(() => tx.decrypt(frame))).toBe('BAD_KEY');
    const otherSuite = new SframeContext({ suite: SFRAME_AES_128_GCM_SHA256_128 });
    otherSuite.addReceiveKey(7, baseKey);
    expect(codeOf(() => otherSuite.decrypt(frame))).toBe('DECRYPT_FAILED');
  });

  it('keeps each KID for sending or receiving, never both, and refuses unknown suites', () => {
    const ctx = new SframeContext();
    ctx.addSendKey(1, baseKey);
    expect(codeOf(() => ctx.addReceiveKey(1, baseKey))).toBe('BAD_KEY');
    expect(codeOf(() => ctx.addSendKey(1, baseKey))).toBe('BAD_KEY');
    ctx.removeKey(1);
    ctx.addReceiveKey(1, baseKey);
    expect(ctx.hasReceiveKey(1)).toBe(true);
    expect(codeOf(() => ctx.encrypt(1, randomBytes(3)))).toBe('BAD_KEY');
    expect(codeOf(() => new SframeContext({ suite: 6 as SframeCipherSuite }))).toBe('UNSUPPORTED_SUITE');
    expect(codeOf(() => ctx.addReceiveKey(2, new Uint8Array(0)))).toBe('BAD_KEY');
  });

  it('rejects a replayed CTR, accepts reordering inside the window once, and rejects frames behind it', () => {
    const { tx, rx } = pair(SFRAME_AES_256_GCM_SHA512_128, 7, 16);
    const frames = Array.from({ length: 40 }, (_, i) => tx.encrypt(7, Uint8Array.of(i)));
    expect(rx.decrypt(frames[0]!).ctr).toBe(0n);
    expect(codeOf(() => rx.decrypt(frames[0]!))).toBe('REPLAY');
    expect(rx.decrypt(frames[5]!).ctr).toBe(5n);
    expect(rx.decrypt(frames[3]!).ctr).toBe(3n);
    expect(codeOf(() => rx.decrypt(frames[3]!))).toBe('REPLAY');
    expect(codeOf(() => rx.decrypt(frames[5]!))).toBe('REPLAY');
    expect(rx.decrypt(frames[20]!).ctr).toBe(20n);
    expect(rx.decrypt(frames[5 + 1]!).ctr).toBe(6n); // 20 − 6 = 14 < 16: still inside
    expect(codeOf(() => rx.decrypt(frames[4]!))).toBe('REPLAY'); // 20 − 4 = 16: behind the window
    expect(rx.decrypt(frames[39]!).ctr).toBe(39n);
    expect(codeOf(() => rx.decrypt(frames[20]!))).toBe('REPLAY'); // 39 − 20 = 19: behind, and was seen
    expect(rx.decrypt(frames[30]!).ctr).toBe(30n);
    expect(codeOf(() => rx.decrypt(frames[30]!))).toBe('REPLAY');
    expect(codeOf(() => rx.decrypt(frames[39]!))).toBe('REPLAY');
  });

  it('refuses to encrypt once the 64-bit CTR is exhausted, never wrapping to a used nonce', () => {
    const tx = new SframeContext();
    tx.addSendKey(3, baseKey, SFRAME_MAX_VALUE - 1n);
    const rx = new SframeContext();
    rx.addReceiveKey(3, baseKey);
    expect(rx.decrypt(tx.encrypt(3, Uint8Array.of(1))).ctr).toBe(SFRAME_MAX_VALUE - 1n);
    const last = tx.encrypt(3, Uint8Array.of(2));
    expect(hexEncode(last.subarray(0, 9))).toBe('3fffffffffffffffff');
    expect(rx.decrypt(last).ctr).toBe(SFRAME_MAX_VALUE);
    expect(codeOf(() => tx.encrypt(3, Uint8Array.of(3)))).toBe('BAD_KEY');
    expect(codeOf(() => tx.encrypt(3, Uint8Array.of(3)))).toBe('BAD_KEY');
    expect(tx.nextCounter(3)).toBe(SFRAME_MAX_VALUE + 1n);
    expect(codeOf(() => new SframeContext().addSendKey(3, baseKey, SFRAME_MAX_VALUE + 1n))).toBe('MALFORMED');
  });
});

describe('sframeKeysForCall (§10)', () => {
  it('gives caller and callee the same k_c and k_r, bound to call_id and both addresses, driving SFrame each way', () => {
    const eC = generateSecretKey();
    const eR = generateSecretKey();
    const callerAddr = randomBytes(68);
    const calleeAddr = randomBytes(68);
    const callId = 0xfedcba9876543210n;
    const caller = sframeKeysForCall({ callId, ownEphemeralSk: eC, peerEphemeralPk: pub(eR), callerAddr, calleeAddr });
    const callee = sframeKeysForCall({ callId, ownEphemeralSk: eR, peerEphemeralPk: pub(eC), callerAddr, calleeAddr });
    expect(callee).toEqual(caller);
    expect(caller.kC).toHaveLength(32);
    expect(caller.kR).not.toEqual(caller.kC);
    const other = (o: Partial<Parameters<typeof sframeKeysForCall>[0]>) =>
      sframeKeysForCall({ callId, ownEphemeralSk: eC, peerEphemeralPk: pub(eR), callerAddr, calleeAddr, ...o }).kC;
    expect(other({ callId: callId ^ 1n })).not.toEqual(caller.kC);
    expect(other({ callerAddr: calleeAddr, calleeAddr: callerAddr })).not.toEqual(caller.kC);
    expect(codeOf(() => other({ callId: SFRAME_MAX_VALUE + 1n }))).toBe('MALFORMED');

    const callerTx = new SframeContext();
    callerTx.addSendKey(0, caller.kC);
    const calleeRx = new SframeContext();
    calleeRx.addReceiveKey(0, callee.kC);
    expect(calleeRx.decrypt(callerTx.encrypt(0, Uint8Array.of(9))).plaintext).toEqual(Uint8Array.of(9));
    const wrongDirection = new SframeContext();
    wrongDirection.addReceiveKey(0, callee.kR);
    expect(codeOf(() => wrongDirection.decrypt(callerTx.encrypt(0, Uint8Array.of(9))))).toBe('DECRYPT_FAILED');
  });
});

import { readFileSync } from 'node:fs';
import { ml_kem1024 } from '@noble/post-quantum/ml-kem.js';
import { schnorr } from '@noble/curves/secp256k1.js';
import { CryptoError } from '../errors';
import { hexDecode, hexEncode } from '../bytes';
import { pad, unpad } from '../content';
import { DEVICE_FLAG_AIK_HOLDER, SUITE_V1, accountIdOf, createDeviceCertificate, generateSecretKey, parseDeviceCertificate, pub, ecdh } from '../index';
import { PREKEY_KIND, createPreKeyRecord, encodePreKeyBundle, parsePreKeyBundle } from '../prekeys';
import { safetyNumber, verifySafetyQr } from '../safety-number';
import { addr, encodePreKeyMessage, parsePreKeyMessage, pqxdhInitiate, pqxdhRespond, verifyBundle } from './pqxdh';
import { chainFromSkdm, deserializeSenderChain, newSenderChain, parseSenderKeyMessage, senderKeyDecrypt, senderKeyEncrypt, serializeSenderChain, skdmOf } from './sender-keys';
import { initInitiator, initResponder, ratchetDecrypt, ratchetEncrypt, deserializeRatchetState, serializeRatchetState, type RatchetState } from './ratchet';

const te = new TextEncoder();
const now = Date.now();

function device() {
  const aikSk = generateSecretKey();
  const dikSk = generateSecretKey();
  const aik = pub(aikSk);
  const cert = parseDeviceCertificate(createDeviceCertificate({ suite: SUITE_V1, aik, deviceId: 7, dik: pub(dikSk), createdAt: now, flags: DEVICE_FLAG_AIK_HOLDER }, aikSk, dikSk));
  return { aikSk, dikSk, aik, cert };
}

function session(withOpk: boolean) {
  const a = device();
  const b = device();
  const owner = accountIdOf(b.aik);
  const spkSk = generateSecretKey();
  const opkSk = generateSecretKey();
  const kemSeed = new Uint8Array(64).fill(3);
  const kemPk = ml_kem1024.keygen(kemSeed).publicKey;
  const rec = (kind: 1 | 2 | 3, keyId: number, publicKey: Uint8Array) => createPreKeyRecord({ accountId: owner, deviceId: 7, kind, keyId, publicKey, createdAt: now }, b.dikSk);
  const bundle = parsePreKeyBundle(encodePreKeyBundle({ certificate: b.cert.bytes, signedPreKey: rec(1, 1, pub(spkSk)), ...(withOpk ? { oneTimePreKey: rec(2, 2, pub(opkSk)) } : {}), kemPreKey: rec(3, 3, kemPk) }));
  verifyBundle(bundle, now);
  const init = pqxdhInitiate({ cert: a.cert, dikSk: a.dikSk }, bundle);
  let alice = initInitiator({ rk0: init.rk0, peerSpk: init.spk, self: addr(a.cert), peer: addr(b.cert), baseKey: init.baseKey, pendingPrekey: new Uint8Array(0), now });
  const first = ratchetEncrypt(alice, te.encode('hello bob'), now);
  alice = first.state;
  const wire = encodePreKeyMessage(init.fields, first.message);
  const msg = parsePreKeyMessage(wire);
  const resp = pqxdhRespond({ cert: b.cert, dikSk: b.dikSk }, msg, { spkSk, ...(withOpk ? { opkSk } : {}), kemSeedOrSk: kemSeed, kemPk });
  expect(resp.rk0).toEqual(init.rk0);
  let bob = initResponder({ rk0: resp.rk0, spkSk, self: addr(b.cert), peer: addr(msg.cert), baseKey: msg.ek, now });
  const got = ratchetDecrypt(bob, msg.ratchetMessage, now);
  bob = got.state;
  expect(new TextDecoder().decode(got.content)).toBe('hello bob');
  return { alice, bob, wire };
}

const text = (s: string) => te.encode(s);
const read = (b: Uint8Array) => new TextDecoder().decode(b);

describe('PQXDH and the Double Ratchet', () => {
  it.each([true, false])('agree on keys with and without a one-time prekey (OPK: %s)', (withOpk) => {
    session(withOpk);
  });

  it('exchanges messages both ways, out of order, and survives serialisation', () => {
    let { alice, bob } = session(true);
    const out: Uint8Array[] = [];
    for (let i = 0; i < 5; i++) {
      const r = ratchetEncrypt(bob, text(`b${i}`), now);
      bob = r.state;
      out.push(r.message);
    }
    for (const i of [4, 0, 3, 1, 2]) {
      const r = ratchetDecrypt(alice, out[i]!, now);
      alice = r.state;
      expect(read(r.content)).toBe(`b${i}`);
    }
    alice = deserializeRatchetState(serializeRatchetState(alice));
    const back = ratchetEncrypt(alice, text('a-after'), now);
    expect(read(ratchetDecrypt(bob, back.message, now).content)).toBe('a-after');
  });

  it('rejects replays and leaves the state untouched on failure', () => {
    let { alice, bob } = session(false);
    const r = ratchetEncrypt(alice, text('once'), now);
    alice = r.state;
    bob = ratchetDecrypt(bob, r.message, now).state;
    expect(() => ratchetDecrypt(bob, r.message, now)).toThrow(CryptoError);
    const before = serializeRatchetState(bob);
    const tampered = r.message.slice();
    tampered[tampered.length - 1]! ^= 1;
    expect(() => ratchetDecrypt(bob, tampered, now)).toThrow(CryptoError);
    expect(serializeRatchetState(bob)).toBe(before);
  });

  it('accepts a skip of exactly 2000 and rejects 2001', () => {
    const { alice } = session(false);
    let a: RatchetState = alice;
    const msgs: Uint8Array[] = [];
    for (let i = 0; i <= 2001; i++) {
      const r = ratchetEncrypt(a, text(String(i)), now);
      a = r.state;
      msgs.push(r.message);
    }
    const fresh = session(false);
    expect(() => ratchetDecrypt(fresh.bob, msgs[2001]!, now)).toThrow(expect.objectContaining({ code: expect.any(String) }));
    const { alice: a2, bob: b2 } = session(false);
    let s = a2;
    let last: Uint8Array = new Uint8Array();
    for (let i = 0; i <= 2001; i++) {
      const r = ratchetEncrypt(s, text(String(i)), now);
      s = r.state;
      last = r.message;
      if (i === 2000) {
        expect(read(ratchetDecrypt(b2, r.message, now).content)).toBe('2000');
      }
    }
    expect(() => ratchetDecrypt(b2, last, now)).toThrow(expect.objectContaining({ code: 'TOO_MANY_SKIPPED' }));
  });

});

describe('padding (§7)', () => {
  it.each([[0, 256], [254, 256], [255, 256], [256, 512]])('pads %i bytes to %i', (n, len) => {
    const x = new Uint8Array(n).fill(7);
    const p = pad(x);
    expect(p.length).toBe(len);
    expect(unpad(p)).toEqual(x);
  });
  it('rejects bad padding', () => {
    expect(() => unpad(new Uint8Array(256))).toThrow(CryptoError);
    expect(() => unpad(new Uint8Array(100))).toThrow(CryptoError);
  });
});

describe('known values and published vectors', () => {
  it('ECDH(1, Pub(2)) = x(2G)', () => {
    const one = new Uint8Array(32);
    one[31] = 1;
    const two = new Uint8Array(32);
    two[31] = 2;
    expect(hexEncode(ecdh(one, pub(two)))).toBe('c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5');
  });

  it('agrees with the BIP340 test vectors', () => {
    const rows = readFileSync(`${process.cwd()}/libs/crypto/vectors/published/bip340-test-vectors.csv`, 'utf8').trim().split('\n').slice(1);
    expect(rows.length).toBeGreaterThan(10);
    for (const row of rows) {
      const [, , pk, , msg, sig, result] = row.split(',');
      let ok = false;
      try {
        ok = schnorr.verify(hexDecode(sig!), hexDecode(msg!), hexDecode(pk!));
      } catch {
        ok = false;
      }
      expect(ok).toBe(result === 'TRUE');
    }
  });
});

describe('safety numbers (§11)', () => {
  it('are the same on both sides, 60 digits, and the QR verifies crosswise', () => {
    const a = device();
    const b = device();
    const ab = safetyNumber(a.aik, b.aik);
    const ba = safetyNumber(b.aik, a.aik);
    expect(ab.digits).toBe(ba.digits);
    expect(ab.digits).toMatch(/^\d{60}$/);
    expect(ab.groups).toHaveLength(12);
    expect(verifySafetyQr(ab.qr, ba.qr)).toBe(true);
    expect(verifySafetyQr(ab.qr, ab.qr)).toBe(false);
    expect(safetyNumber(a.aik, device().aik).digits).not.toBe(ab.digits);
  });
});

void PREKEY_KIND;

describe('sender keys (§6)', () => {
  const gid = new Uint8Array(32).fill(5);
  const sender = new Uint8Array(68).fill(1);

  it('distributes by SKDM, decrypts in and out of order, rejects replays, bad signatures and jumps over 2000', () => {
    let mine = newSenderChain(gid, 3, now);
    const theirs0 = chainFromSkdm(skdmOf(mine), now);
    const msgs: Uint8Array[] = [];
    for (let i = 0; i < 4; i++) {
      const r = senderKeyEncrypt(mine, sender, text(`g${i}`));
      mine = r.chain;
      msgs.push(r.message);
    }
    let theirs = theirs0;
    for (const i of [2, 0, 3, 1]) {
      const r = senderKeyDecrypt(theirs, sender, parseSenderKeyMessage(msgs[i]!));
      theirs = r.chain;
      expect(read(r.content)).toBe(`g${i}`);
    }
    expect(() => senderKeyDecrypt(theirs, sender, parseSenderKeyMessage(msgs[1]!))).toThrow(expect.objectContaining({ code: 'REPLAY' }));
    const forged = msgs[0]!.slice();
    forged[forged.length - 1]! ^= 1;
    expect(() => senderKeyDecrypt(theirs0, sender, parseSenderKeyMessage(forged))).toThrow(expect.objectContaining({ code: 'BAD_SIGNATURE' }));
    expect(() => senderKeyDecrypt(theirs0, new Uint8Array(68).fill(2), parseSenderKeyMessage(msgs[0]!))).toThrow(CryptoError);
    const far = senderKeyEncrypt({ ...mine, it: mine.it + 2001 }, sender, text('far'));
    expect(() => senderKeyDecrypt(theirs, sender, parseSenderKeyMessage(far.message))).toThrow(expect.objectContaining({ code: 'TOO_MANY_SKIPPED' }));
    let edge = newSenderChain(gid, 1, now);
    const receiver = chainFromSkdm(skdmOf(edge), now);
    const sent: Uint8Array[] = [];
    for (let i = 0; i <= 2001; i++) {
      const r = senderKeyEncrypt(edge, sender, text(String(i)));
      edge = r.chain;
      sent.push(r.message);
    }
    expect(read(senderKeyDecrypt(receiver, sender, parseSenderKeyMessage(sent[2000]!)).content)).toBe('2000');
    expect(() => senderKeyDecrypt(receiver, sender, parseSenderKeyMessage(sent[2001]!))).toThrow(expect.objectContaining({ code: 'TOO_MANY_SKIPPED' }));
    expect(deserializeSenderChain(serializeSenderChain(mine))).toEqual(mine);
  });
});

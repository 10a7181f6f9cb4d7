import { ml_kem1024 } from '@noble/post-quantum/ml-kem.js';
import { DEVICE_FLAG_AIK_HOLDER, accountIdOf, createDeviceCertificate, parseDeviceCertificate, type DeviceCertificate } from '../identity';
import { CryptoError } from '../errors';
import { generateSecretKey, pub, randomBytes, SUITE_V1 } from '../primitives';
import { createPreKeyRecord, encodePreKeyBundle, parsePreKeyBundle } from '../prekeys';
import { addr, encodePreKeyMessage, parsePreKeyMessage, pqxdhInitiate, pqxdhRespond } from '../session/pqxdh';
import { initInitiator, initResponder, ratchetDecrypt, ratchetEncrypt, type RatchetState } from '../session/ratchet';

export interface TestDevice {
  aikSk: Uint8Array;
  dikSk: Uint8Array;
  cert: DeviceCertificate;
  spkSk: Uint8Array;
  opkSk: Uint8Array;
  kemSeed: Uint8Array;
  kemPk: Uint8Array;
  bundle: Uint8Array;
}

/** A device with a certificate and a full prekey bundle, for tests and benchmarks. */
export function testDevice(now = Date.now(), flags: number = DEVICE_FLAG_AIK_HOLDER): TestDevice {
  const aikSk = generateSecretKey();
  const dikSk = generateSecretKey();
  const cert = parseDeviceCertificate(
    createDeviceCertificate({ suite: SUITE_V1, aik: pub(aikSk), deviceId: 1 + (randomBytes(2)[0]! << 8) + randomBytes(1)[0]!, dik: pub(dikSk), createdAt: now, flags }, aikSk, dikSk),
  );
  const spkSk = generateSecretKey();
  const opkSk = generateSecretKey();
  const kemSeed = randomBytes(64);
  const kemPk = ml_kem1024.keygen(kemSeed).publicKey;
  const owner = accountIdOf(cert.aik);
  const rec = (kind: 1 | 2 | 3, publicKey: Uint8Array) => createPreKeyRecord({ accountId: owner, deviceId: cert.deviceId, kind, keyId: kind, publicKey, createdAt: now }, dikSk);
  const bundle = encodePreKeyBundle({ certificate: cert.bytes, signedPreKey: rec(1, pub(spkSk)), oneTimePreKey: rec(2, pub(opkSk)), kemPreKey: rec(3, kemPk) });
  return { aikSk, dikSk, cert, spkSk, opkSk, kemSeed, kemPk, bundle };
}

/** Two ratchet states after PQXDH and one message from the initiator (so both can send); header encryption as negotiated (§4.4). */
export function establishedPair(a: TestDevice, b: TestDevice, now = Date.now()): { a: RatchetState; b: RatchetState; prekeyMessage: Uint8Array } {
  const init = pqxdhInitiate({ cert: a.cert, dikSk: a.dikSk }, parsePreKeyBundle(b.bundle));
  const headerKeys = init.headerEncryption ? { headerKeys: { hkA: init.hkA, hkB: init.hkB } } : {};
  let sa = initInitiator({ rk0: init.rk0, peerSpk: init.spk, self: addr(a.cert), peer: addr(b.cert), baseKey: init.baseKey, pendingPrekey: new Uint8Array(0), now, ...headerKeys });
  const first = ratchetEncrypt(sa, new TextEncoder().encode('hello'), now);
  sa = first.state;
  const prekeyMessage = encodePreKeyMessage(init.fields, first.message);
  const msg = parsePreKeyMessage(prekeyMessage);
  const resp = pqxdhRespond({ cert: b.cert, dikSk: b.dikSk }, msg, { spkSk: b.spkSk, opkSk: b.opkSk, kemSeedOrSk: b.kemSeed, kemPk: b.kemPk });
  if (resp.headerEncryption !== init.headerEncryption) throw new Error('header-encryption mode differs between the two sides');
  const sb = ratchetDecrypt(initResponder({ rk0: resp.rk0, spkSk: b.spkSk, self: addr(b.cert), peer: addr(a.cert), baseKey: msg.ek, now, ...(resp.headerEncryption ? { headerKeys: { hkA: resp.hkA, hkB: resp.hkB } } : {}) }), msg.ratchetMessage, now).state;
  return { a: sa, b: sb, prekeyMessage };
}

/** 'ok', or the code of the CryptoError `f` throws; anything else propagates (and fails the test). */
export function cryptoOutcome(f: () => unknown): string {
  try {
    f();
    return 'ok';
  } catch (err) {
    if (err instanceof CryptoError) return err.code;
    throw err;
  }
}

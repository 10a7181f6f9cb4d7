/**
 * Crypto benchmark (not a test): PQXDH session setups per second, ratchet encrypt+decrypt of a
 * 1 KiB message with and without a DH step, a fan-out to 100 devices, and one message to
 * 20 contacts × 3 devices with sessions established. Prints one JSON object as its last line.
 */
import { ml_kem1024 } from '@noble/post-quantum/ml-kem.js';
import {
  DEVICE_FLAG_AIK_HOLDER,
  SUITE_V1,
  accountIdOf,
  addr,
  createDeviceCertificate,
  createPreKeyRecord,
  encodePreKeyBundle,
  generateSecretKey,
  initInitiator,
  initResponder,
  parseDeviceCertificate,
  parsePreKeyBundle,
  pqxdhInitiate,
  pqxdhRespond,
  pub,
  randomBytes,
  ratchetDecrypt,
  ratchetEncrypt,
  type RatchetState,
} from '@umbra/crypto';

const now = Date.now();

function device() {
  const aikSk = generateSecretKey();
  const dikSk = generateSecretKey();
  const cert = parseDeviceCertificate(createDeviceCertificate({ suite: SUITE_V1, aik: pub(aikSk), deviceId: 1 + Math.floor(Math.random() * 1e9), dik: pub(dikSk), createdAt: now, flags: DEVICE_FLAG_AIK_HOLDER }, aikSk, dikSk));
  const spkSk = generateSecretKey();
  const opkSk = generateSecretKey();
  const kemSeed = randomBytes(64);
  const kemPk = ml_kem1024.keygen(kemSeed).publicKey;
  const owner = accountIdOf(cert.aik);
  const rec = (kind: 1 | 2 | 3, publicKey: Uint8Array) => createPreKeyRecord({ accountId: owner, deviceId: cert.deviceId, kind, keyId: kind, publicKey, createdAt: now }, dikSk);
  const bundle = encodePreKeyBundle({ certificate: cert.bytes, signedPreKey: rec(1, pub(spkSk)), oneTimePreKey: rec(2, pub(opkSk)), kemPreKey: rec(3, kemPk) });
  return { dikSk, cert, spkSk, opkSk, kemSeed, kemPk, bundle };
}

type Dev = ReturnType<typeof device>;

function establish(a: Dev, b: Dev): { alice: RatchetState; bob: RatchetState } {
  const init = pqxdhInitiate({ cert: a.cert, dikSk: a.dikSk }, parsePreKeyBundle(b.bundle));
  const resp = pqxdhRespond({ cert: b.cert, dikSk: b.dikSk }, { ...init.fields, cert: a.cert }, { spkSk: b.spkSk, opkSk: b.opkSk, kemSeedOrSk: b.kemSeed, kemPk: b.kemPk });
  const alice = initInitiator({ rk0: init.rk0, peerSpk: init.spk, self: addr(a.cert), peer: addr(b.cert), baseKey: init.baseKey, pendingPrekey: new Uint8Array(0), now });
  const bob = initResponder({ rk0: resp.rk0, spkSk: b.spkSk, self: addr(b.cert), peer: addr(a.cert), baseKey: init.baseKey, now });
  return { alice, bob };
}

function rate(fn: () => void, minMs = 2000): number {
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < minMs) {
    fn();
    n++;
  }
  return n / ((performance.now() - start) / 1000);
}

const msg = randomBytes(1024);
const a = device();
const b = device();
const pqxdhPerS = rate(() => establish(a, b));

let { alice, bob } = establish(a, b);
{
  const first = ratchetEncrypt(alice, msg, now);
  alice = first.state;
  bob = ratchetDecrypt(bob, first.message, now).state;
}
const sameChainPerS = rate(() => {
  const e = ratchetEncrypt(alice, msg, now);
  alice = e.state;
  bob = ratchetDecrypt(bob, e.message, now).state;
});
let turn = 0;
const dhStepPerS = rate(() => {
  // Alternating directions: every message starts a new chain (a DH ratchet step).
  if (turn++ % 2 === 0) {
    const e = ratchetEncrypt(alice, msg, now);
    alice = e.state;
    bob = ratchetDecrypt(bob, e.message, now).state;
  } else {
    const e = ratchetEncrypt(bob, msg, now);
    bob = e.state;
    alice = ratchetDecrypt(alice, e.message, now).state;
  }
});

const fanout = (n: number) => {
  const sessions = Array.from({ length: n }, () => establish(a, device()).alice);
  const t = performance.now();
  for (let i = 0; i < n; i++) sessions[i] = ratchetEncrypt(sessions[i]!, msg, now).state;
  return performance.now() - t;
};
const group100Ms = fanout(100);
const contacts60Ms = fanout(60);

const result = {
  pqxdh_setups_per_s: Math.round(pqxdhPerS),
  ratchet_1kib_encrypt_decrypt_per_s_same_chain: Math.round(sameChainPerS),
  ratchet_1kib_encrypt_decrypt_per_s_dh_step: Math.round(dhStepPerS),
  pairwise_send_100_devices_ms: +group100Ms.toFixed(1),
  send_20_contacts_x_3_devices_ms: +contacts60Ms.toFixed(1),
};
process.stdout.write(`${JSON.stringify(result)}\n`);

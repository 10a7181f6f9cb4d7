/**
 * Crypto benchmark (not a test): PQXDH session setups per second, ratchet encrypt+decrypt of a
 * 1 KiB message with and without a DH step (plain and with §4.4 header encryption, the SDK's
 * default), a group send to 100 devices (sender keys: steady state, and the first send that also
 * distributes the chain pairwise), a pairwise fan-out to 100 devices, and one message to
 * 20 contacts × 3 devices with sessions established. Prints one JSON object as its last line.
 * Session setups and the secp256k1 operations are measured with each provider set: native (Node's
 * default: the libsecp256k1 addon with BIP340 in WebAssembly, ML-KEM from node:crypto), wasm
 * (libsecp256k1 in WebAssembly for all of secp256k1, ML-KEM from node:crypto) and @noble for both
 * (the browser's); `--sessions-only` stops after those, `--provider native|wasm|noble` measures one.
 */
import { ml_kem1024 } from '@noble/post-quantum/ml-kem.js';
import {
  DEVICE_FLAG_AIK_HOLDER,
  DEVICE_FLAG_HEADER_ENCRYPTION,
  encodeContent,
  newSenderChain,
  senderKeyEncrypt,
  skdmOf,
  SUITE_V1,
  accountIdOf,
  addr,
  createDeviceCertificate,
  createPreKeyRecord,
  encodePreKeyBundle,
  ecdh,
  generateSecretKey,
  initInitiator,
  loadNativeMlKemProvider,
  loadNativeSecp256k1Provider,
  loadWasmSecp256k1Provider,
  mlKemProvider,
  nobleMlKemProvider,
  nobleSecp256k1Provider,
  useMlKemProvider,
  type MlKemProvider,
  secp256k1Provider,
  sign,
  useSecp256k1Provider,
  verify,
  type Secp256k1Provider,
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

function device(flags = DEVICE_FLAG_AIK_HOLDER) {
  const aikSk = generateSecretKey();
  const dikSk = generateSecretKey();
  const cert = parseDeviceCertificate(createDeviceCertificate({ suite: SUITE_V1, aik: pub(aikSk), deviceId: 1 + Math.floor(Math.random() * 1e9), dik: pub(dikSk), createdAt: now, flags }, aikSk, dikSk));
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
  const hk = init.headerEncryption ? { headerKeys: { hkA: init.hkA, hkB: init.hkB } } : {};
  const alice = initInitiator({ rk0: init.rk0, peerSpk: init.spk, self: addr(a.cert), peer: addr(b.cert), baseKey: init.baseKey, pendingPrekey: new Uint8Array(0), now, ...hk });
  const bob = initResponder({ rk0: resp.rk0, spkSk: b.spkSk, self: addr(b.cert), peer: addr(a.cert), baseKey: init.baseKey, now, ...hk });
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

/** Setups/s and ms per secp256k1 operation with one secp256k1 and one ML-KEM provider pinned. */
function perProvider(p: Secp256k1Provider, kem: MlKemProvider) {
  useSecp256k1Provider(p);
  useMlKemProvider(kem);
  const sk = generateSecretKey();
  const peer = pub(generateSecretKey());
  const m = randomBytes(64);
  const sig = sign(sk, 'bench', m);
  const pk = pub(sk);
  const ms = (fn: () => void) => +(1000 / rate(fn, 500)).toFixed(3);
  const ops = { ecdh_ms: ms(() => ecdh(sk, peer)), pub_ms: ms(() => pub(sk)), sign_ms: ms(() => sign(sk, 'bench', m)), verify_ms: ms(() => verify(pk, 'bench', m, sig)) };
  // Also per CPU-second of this process: on a shared machine the wall-clock rate includes time the
  // scheduler gave to other work.
  let count = 0;
  const cpu0 = process.cpuUsage();
  const setups = Math.round(
    rate(() => {
      establish(a, b);
      count++;
    }),
  );
  const cpu = process.cpuUsage(cpu0);
  const setupsPerCpuS = Math.round(count / ((cpu.user + cpu.system) / 1e6));
  useSecp256k1Provider(undefined);
  useMlKemProvider(undefined);
  return { setups, setupsPerCpuS, ops };
}
// `--provider native|wasm|noble` measures one only (for profiling with --cpu-prof).
const only = process.argv.includes('--provider') ? process.argv[process.argv.indexOf('--provider') + 1] : undefined;
const nodeKem = loadNativeMlKemProvider() ?? nobleMlKemProvider;
const native = only === undefined || only === 'native' ? loadNativeSecp256k1Provider() : undefined;
const nativeFigures = native ? perProvider(native, nodeKem) : undefined;
const wasm = only === undefined || only === 'wasm' ? loadWasmSecp256k1Provider() : undefined;
const wasmFigures = wasm ? perProvider(wasm, nodeKem) : undefined;
// The browser's (and this repository's before native providers): @noble for secp256k1 and ML-KEM.
const nobleFigures = only === undefined || only === 'noble' ? perProvider(nobleSecp256k1Provider, nobleMlKemProvider) : undefined;
const sessions = {
  secp256k1_provider: secp256k1Provider().name,
  ml_kem_provider: mlKemProvider().name,
  native_secp256k1_provider: native?.name ?? null,
  pqxdh_setups_per_s_native: nativeFigures?.setups ?? null,
  pqxdh_setups_per_s_wasm: wasmFigures?.setups ?? null,
  pqxdh_setups_per_s_noble: nobleFigures?.setups ?? null,
  pqxdh_setups_per_cpu_s_native: nativeFigures?.setupsPerCpuS ?? null,
  pqxdh_setups_per_cpu_s_wasm: wasmFigures?.setupsPerCpuS ?? null,
  pqxdh_setups_per_cpu_s_noble: nobleFigures?.setupsPerCpuS ?? null,
  secp256k1_ops_native: nativeFigures?.ops ?? null,
  secp256k1_ops_wasm: wasmFigures?.ops ?? null,
  secp256k1_ops_noble: nobleFigures?.ops ?? null,
};
if (process.argv.includes('--sessions-only')) {
  process.stdout.write(`${JSON.stringify({ pqxdh_setups_per_s: nativeFigures?.setups ?? wasmFigures?.setups ?? nobleFigures?.setups ?? null, ...sessions })}\n`);
  process.exit(0);
}
const pqxdhPerS = rate(() => establish(a, b));

/** Encrypt+decrypt rates on one session: same chain, and with a DH ratchet step every message. */
function ratchetRates(x: Dev, y: Dev): { sameChain: number; dhStep: number } {
  let { alice, bob } = establish(x, y);
  const first = ratchetEncrypt(alice, msg, now);
  alice = first.state;
  bob = ratchetDecrypt(bob, first.message, now).state;
  const sameChain = rate(() => {
    const e = ratchetEncrypt(alice, msg, now);
    alice = e.state;
    bob = ratchetDecrypt(bob, e.message, now).state;
  });
  let turn = 0;
  const dhStep = rate(() => {
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
  return { sameChain, dhStep };
}
const plain = ratchetRates(a, b);
const he = ratchetRates(device(DEVICE_FLAG_AIK_HOLDER | DEVICE_FLAG_HEADER_ENCRYPTION), device(DEVICE_FLAG_AIK_HOLDER | DEVICE_FLAG_HEADER_ENCRYPTION));

const fanout = (n: number) => {
  const sessions = Array.from({ length: n }, () => establish(a, device()).alice);
  const t = performance.now();
  for (let i = 0; i < n; i++) sessions[i] = ratchetEncrypt(sessions[i]!, msg, now).state;
  return performance.now() - t;
};
const group100Ms = fanout(100);
const contacts60Ms = fanout(60);

// Sender keys (§6): the steady state is one SenderKeyMessage for all 100 devices; the first send
// after a (re)key also hands the chain to each device in a pairwise SKDM.
const members = Array.from({ length: 100 }, () => establish(a, device()).alice);
const gid = randomBytes(32);
let chain = newSenderChain(gid, 0, now);
const firstT = performance.now();
chain = newSenderChain(gid, 0, now);
const skdm = encodeContent({ v: 1, id: 'AAAAAAAAAAAAAAAAAAAAAA', ts: now, k: 'skdm', ...skdmOf(chain) });
for (let i = 0; i < members.length; i++) members[i] = ratchetEncrypt(members[i]!, skdm, now).state;
chain = senderKeyEncrypt(chain, addr(a.cert), msg).chain;
const groupFirstMs = performance.now() - firstT;
const groupSendsPerS = rate(() => {
  chain = senderKeyEncrypt(chain, addr(a.cert), msg).chain;
});

const result = {
  pqxdh_setups_per_s: Math.round(pqxdhPerS),
  ...sessions,
  ratchet_1kib_encrypt_decrypt_per_s_same_chain: Math.round(plain.sameChain),
  ratchet_1kib_encrypt_decrypt_per_s_dh_step: Math.round(plain.dhStep),
  ratchet_he_1kib_encrypt_decrypt_per_s_same_chain: Math.round(he.sameChain),
  ratchet_he_1kib_encrypt_decrypt_per_s_dh_step: Math.round(he.dhStep),
  group_send_100_devices_sender_key_ms: +(1000 / groupSendsPerS).toFixed(2),
  group_first_send_100_devices_with_skdm_ms: +groupFirstMs.toFixed(1),
  pairwise_send_100_devices_ms: +group100Ms.toFixed(1),
  send_20_contacts_x_3_devices_ms: +contacts60Ms.toFixed(1),
};
process.stdout.write(`${JSON.stringify(result)}\n`);

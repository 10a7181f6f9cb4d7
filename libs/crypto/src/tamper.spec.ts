import { CryptoError } from './errors';
import {
  createAuthResponse,
  createSignedDeviceList,
  createSignedHandleClaim,
  parseAuthResponse,
  parseDeviceCertificate,
  verifyAuthResponse,
  verifyDeviceCertificate,
  verifySignedDeviceList,
  verifySignedHandleClaim,
  accountIdOf,
} from './identity';
import { parsePreKeyBundle, parsePreKeyRecord, verifyPreKeyRecord } from './prekeys';
import { parsePreKeyMessage, pqxdhRespond, verifyBundle } from './session/pqxdh';
import { ratchetDecrypt, ratchetEncrypt, initResponder } from './session/ratchet';
import { addr } from './session/pqxdh';
import { chainFromSkdm, newSenderChain, parseSenderKeyMessage, senderKeyDecrypt, senderKeyEncrypt, skdmOf } from './session/sender-keys';
import { completeLink, createLinkReply, createPendingLink, createProvisioningMessage, openProvisioningMessage, parseLinkQr } from './linking';
import { randomBytes } from './primitives';
import { establishedPair, testDevice } from './testing/fixtures';

const STRIDE = process.env.UMBRA_HEAVY === '1' ? 1 : 5;
const now = Date.now();

/** Every single-byte change (stride STRIDE for the slow ones) must make `check` throw a CryptoError or return false. */
function expectAllFlipsRejected(name: string, bytes: Uint8Array, check: (b: Uint8Array) => unknown, stride = 1): void {
  expect(check(bytes)).not.toBe(false);
  const accepted: number[] = [];
  for (let i = 0; i < bytes.length; i += stride) {
    const t = bytes.slice();
    t[i]! ^= 0x01;
    try {
      if (check(t) !== false) accepted.push(i);
    } catch (err) {
      if (!(err instanceof CryptoError)) throw new Error(`${name}: byte ${i}: threw ${String(err)} instead of a CryptoError`);
    }
  }
  expect({ name, accepted }).toEqual({ name, accepted: [] });
}

describe('a single flipped byte of any wire structure is rejected', () => {
  const a = testDevice();
  const b = testDevice();

  it('identity structures (§1)', () => {
    expectAllFlipsRejected('DeviceCertificate', a.cert.bytes, (x) => verifyDeviceCertificate(parseDeviceCertificate(x)));
    const list = createSignedDeviceList({ aik: a.cert.aik, listVersion: 3, issuedAt: now, certificates: [a.cert.bytes] }, a.aikSk);
    expectAllFlipsRejected('SignedDeviceList', list, (x) => verifySignedDeviceList(x));
    const claim = createSignedHandleClaim({ handle: 'alice_1', accountId: accountIdOf(a.cert.aik), claimVersion: 1, issuedAt: now }, a.aikSk);
    expectAllFlipsRejected('SignedHandleClaim', claim, (x) => verifySignedHandleClaim(x, a.cert.aik));
    const auth = createAuthResponse({ origin: 'https://chat.example', accountId: accountIdOf(a.cert.aik), deviceId: a.cert.deviceId, nonce: randomBytes(32), clientTime: now }, a.dikSk);
    expectAllFlipsRejected('AuthResponse', auth, (x) => verifyAuthResponse(parseAuthResponse(x), a.cert.dik));
  });

  it('prekeys and bundles (§2)', () => {
    const bundle = parsePreKeyBundle(b.bundle);
    expectAllFlipsRejected('PreKeyRecord', bundle.signedPreKey.bytes, (x) => verifyPreKeyRecord(parsePreKeyRecord(x), b.cert.dik));
    expectAllFlipsRejected('KemPreKeyRecord', bundle.kemPreKey.bytes, (x) => verifyPreKeyRecord(parsePreKeyRecord(x), b.cert.dik), STRIDE);
    expectAllFlipsRejected('PreKeyBundle', b.bundle, (x) => verifyBundle(parsePreKeyBundle(x), now), STRIDE);
  });

  it('PreKeyMessage and RatchetMessage (§3, §4)', () => {
    const { prekeyMessage, a: sa, b: sb } = establishedPair(a, b);
    expectAllFlipsRejected(
      'PreKeyMessage',
      prekeyMessage,
      (x) => {
        const m = parsePreKeyMessage(x);
        const s = pqxdhRespond({ cert: b.cert, dikSk: b.dikSk }, m, { spkSk: b.spkSk, opkSk: b.opkSk, kemSeedOrSk: b.kemSeed, kemPk: b.kemPk });
        return ratchetDecrypt(initResponder({ rk0: s.rk0, spkSk: b.spkSk, self: addr(b.cert), peer: addr(m.cert), baseKey: m.ek, now }), m.ratchetMessage, now);
      },
      STRIDE * 3,
    );
    const msg = ratchetEncrypt(sa, new TextEncoder().encode('tamper me'), now).message;
    expectAllFlipsRejected('RatchetMessage', msg, (x) => ratchetDecrypt(sb, x, now));
  });

  it('SenderKeyMessage (§6)', () => {
    const chain = newSenderChain(randomBytes(32), 1, now);
    const receiver = chainFromSkdm(skdmOf(chain), now);
    const sender = addr(a.cert);
    const msg = senderKeyEncrypt(chain, sender, new TextEncoder().encode('group')).message;
    expectAllFlipsRejected('SenderKeyMessage', msg, (x) => senderKeyDecrypt(receiver, sender, parseSenderKeyMessage(x)));
  });

  it('linking (§1): LinkQR, ProvisioningMessage, LinkReply', () => {
    const { pending, qr } = createPendingLink(77);
    const { message, tbs } = createProvisioningMessage(parseLinkQr(qr), { aik: a.cert.aik, aikSk: a.aikSk }, { createdAt: now });
    expectAllFlipsRejected('ProvisioningMessage', message, (x) => openProvisioningMessage(x, pending));
    const opened = openProvisioningMessage(message, pending);
    const reply = createLinkReply(opened.tbsBytes, pending.dikSk);
    expectAllFlipsRejected('LinkReply', reply, (x) => completeLink(x, tbs, a.aikSk));
    expect(() => parseLinkQr(qr.slice(0, -2))).toThrow(CryptoError);
  });
});

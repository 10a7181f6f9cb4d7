import {
  CryptoError,
  PREKEY_KIND,
  accountIdOf,
  addr,
  b64uDecode,
  bytesEqual,
  decodeAccountId,
  decodeContent,
  encodeContent,
  hexEncode,
  initResponder,
  parseDeviceCertificate,
  parsePreKeyMessage,
  pqxdhRespond,
  ratchetDecrypt,
  type Content,
  type RatchetState,
} from '@umbra/crypto';
import { ml_kem1024 } from '@noble/post-quantum/ml-kem.js';
import type { DeliveredEnvelope } from '@umbra/protocol';
import type { KeyValueStore } from '../store';
import type { DeviceListsCache } from './device-lists.cache';
import type { GroupsService } from './groups.service';
import type { MessagingContext } from './messaging.context';
import type { ReceivedMessage } from './messaging.types';
import type { SessionsStore } from './sessions.store';

type SenderCert = { aik: Uint8Array; deviceId: number };

/**
 * Decrypts one envelope into the message it carries: a PreKeyMessage (type 1) starts or resumes a
 * session, a ratchet message (type 2) is tried on the active and archived sessions, a
 * SenderKeyMessage (type 3) uses the sender's group chain. Every write goes to `kv` (the receive's batch).
 */
export class EnvelopeDecryptor {
  constructor(
    private readonly ctx: MessagingContext,
    private readonly sessions: SessionsStore,
    private readonly lists: DeviceListsCache,
    private readonly groups: GroupsService,
  ) {}

  async decrypt(env: DeliveredEnvelope, kv: KeyValueStore): Promise<ReceivedMessage> {
    if (!env.senderAccountId || env.senderDeviceId === null) throw new CryptoError('MALFORMED', 'sealed sender is not supported yet');
    const sender = env.senderAccountId;
    const device = env.senderDeviceId;
    const senderId = decodeAccountId(sender);
    const senderHex = hexEncode(senderId);
    let plaintext: Uint8Array;
    let senderCert: SenderCert;
    if (env.type === 1) {
      ({ plaintext, senderCert } = await this.decryptPreKey(env, senderId, senderHex, device, kv));
    } else if (env.type === 2) {
      const done = await this.decryptRatchet(b64uDecode(env.content), senderHex, device, kv);
      const list = await this.lists.cachedOrFetched(sender, device);
      senderCert = list.devices.find((d) => d.deviceId === device) ?? { aik: list.aik, deviceId: device };
      await this.sessions.save(senderCert, done.state, false, done.index === 0 ? undefined : done.index - 1, kv);
      plaintext = done.content;
    } else if (env.type === 3) {
      plaintext = await this.groups.decrypt(env, senderHex, kv);
      const list = await this.lists.cachedOrFetched(sender, device);
      senderCert = list.devices.find((d) => d.deviceId === device) ?? { aik: list.aik, deviceId: device };
    } else {
      throw new CryptoError('MALFORMED', `envelope type ${env.type} is not supported yet`);
    }
    const content = decodeContent(plaintext);
    const list = await this.lists.cachedOrFetched(sender, device);
    const verified = list.devices.some((d) => d.deviceId === device && bytesEqual(d.aik, senderCert.aik));
    if (content.k === 'sync') {
      if (!bytesEqual(senderId, this.ctx.client.identity.accountId)) throw new CryptoError('MALFORMED', 'sync content from another account');
      return {
        from: sender, fromDevice: device, content: decodeContent(encodeContent(content.inner as Content)), sync: true, verified, serverTimestamp: env.serverTimestamp,
        ...(typeof content.dest === 'string' ? { dest: content.dest } : {}),
      };
    }
    return { from: sender, fromDevice: device, content, sync: false, verified, serverTimestamp: env.serverTimestamp };
  }

  /** A PreKeyMessage: a session we already have with its base key, or a new responder session from our prekeys. */
  private async decryptPreKey(env: DeliveredEnvelope, senderId: Uint8Array, senderHex: string, device: number, kv: KeyValueStore): Promise<{ plaintext: Uint8Array; senderCert: SenderCert }> {
    const me = this.ctx.client.identity;
    const now = () => this.ctx.now();
    const pm = parsePreKeyMessage(b64uDecode(env.content));
    if (!bytesEqual(accountIdOf(pm.cert.aik), senderId) || pm.cert.deviceId !== device) throw new CryptoError('MALFORMED', 'PreKeyMessage certificate does not match the envelope sender');
    const all = (await this.sessions.all(senderHex, device, kv)) ?? [];
    const existing = all.findIndex((s) => bytesEqual(s.baseKey, pm.ek));
    if (existing >= 0) {
      const r = ratchetDecrypt(all[existing]!, pm.ratchetMessage, now());
      await this.sessions.save(pm.cert, r.state, false, existing === 0 ? undefined : existing - 1, kv);
      return { plaintext: r.content, senderCert: pm.cert };
    }
    const pk = this.ctx.client.prekeys;
    // §2/§3: without a one-time key the same initial message would set up the same session again.
    const reusableKeys = pm.opkId === undefined || pm.pqKind === PREKEY_KIND.PQLR;
    if (reusableKeys && (await pk.replayed(pm.spkId, pm.ek, kv))) throw new CryptoError('REPLAY', 'initial message already processed (PreKeyMessage replay cache)');
    const spkSk = await pk.secret(PREKEY_KIND.SPK, pm.spkId);
    const opkSk = pm.opkId === undefined ? undefined : await pk.secret(PREKEY_KIND.OPK, pm.opkId);
    const kemSeed = await pk.secret(pm.pqKind as 3 | 4, pm.pqKeyId);
    if (!spkSk || !kemSeed || (pm.opkId !== undefined && !opkSk)) throw new CryptoError('DECRYPT_FAILED', 'prekey unknown or already used');
    const self = parseDeviceCertificate(me.device.certificate);
    const secrets = pqxdhRespond({ cert: self, dikSk: me.device.dikSk }, pm, { spkSk, ...(opkSk ? { opkSk } : {}), kemSeedOrSk: kemSeed, kemPk: ml_kem1024.keygen(kemSeed).publicKey });
    const state = initResponder({
      rk0: secrets.rk0, spkSk, self: addr(self), peer: addr(pm.cert), baseKey: pm.ek, now: now(),
      ...(secrets.headerEncryption ? { headerKeys: { hkA: secrets.hkA, hkB: secrets.hkB } } : {}),
    });
    const r = ratchetDecrypt(state, pm.ratchetMessage, now());
    await this.sessions.save(pm.cert, r.state, true, undefined, kv);
    if (pm.opkId !== undefined) await pk.consume(PREKEY_KIND.OPK, pm.opkId, kv);
    if (pm.pqKind === PREKEY_KIND.PQOPK) await pk.consume(PREKEY_KIND.PQOPK, pm.pqKeyId, kv);
    if (reusableKeys) await pk.recordInitial(pm.spkId, pm.ek, kv);
    return { plaintext: r.content, senderCert: pm.cert };
  }

  /** A ratchet message: the first of the device's sessions (active, then archived) that decrypts it. */
  private async decryptRatchet(bytes: Uint8Array, senderHex: string, device: number, kv: KeyValueStore): Promise<{ state: RatchetState; content: Uint8Array; index: number }> {
    const states = await this.sessions.all(senderHex, device, kv);
    if (!states) throw new CryptoError('DECRYPT_FAILED', 'no session with this device');
    let lastErr: unknown;
    for (const [index, s] of states.entries()) {
      try {
        return { ...ratchetDecrypt(s, bytes, this.ctx.now()), index };
      } catch (err) {
        lastErr = err;
      }
    }
    throw lastErr;
  }
}

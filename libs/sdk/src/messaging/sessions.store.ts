import {
  CryptoError,
  accountIdOf,
  addr,
  b64uDecode,
  bytesEqual,
  deserializeRatchetState,
  encodePreKeyMessage,
  hexEncode,
  initInitiator,
  parseDeviceCertificate,
  parsePreKeyBundle,
  pqxdhInitiate,
  serializeRatchetState,
  verifyBundle,
  type DeviceCertificate,
  type RatchetState,
} from '@umbra/crypto';
import type { UmbraClient } from '../client';
import type { KeyValueStore } from '../store';
import { LocalState } from '../state/local.state';
import { STATE_KEYS } from '../state/state.keys';
import type { SessionRecord } from './messaging.types';

const MAX_ARCHIVED = 40;

/** The pairwise ratchet sessions with peer devices (§3–§5): one active and up to 40 archived per device. */
export class SessionsStore {
  constructor(
    private readonly client: UmbraClient,
    private readonly store: KeyValueStore,
    private readonly now: () => number,
  ) {}

  record(peerHex: string, device: number, kv: KeyValueStore = this.store): Promise<SessionRecord | undefined> {
    return new LocalState(kv).get(STATE_KEYS.session(peerHex, device));
  }

  /** Every session of the device, active first, for trying each on a message. */
  async all(peerHex: string, device: number, kv: KeyValueStore = this.store): Promise<RatchetState[] | undefined> {
    const rec = await this.record(peerHex, device, kv);
    return rec ? [rec.active, ...rec.archived].map(deserializeRatchetState) : undefined;
  }

  async active(cert: DeviceCertificate): Promise<RatchetState | undefined> {
    const rec = await this.record(hexEncode(accountIdOf(cert.aik)), cert.deviceId);
    return rec ? deserializeRatchetState(rec.active) : undefined;
  }

  /**
   * `fresh`: a new session becomes active and the old one is archived (Sesame). `archivedIndex`: the
   * archived session that decrypted becomes active again.
   */
  async save(cert: { aik: Uint8Array; deviceId: number }, state: RatchetState, fresh: boolean, archivedIndex?: number, kv: KeyValueStore = this.store): Promise<void> {
    const peerHex = hexEncode(accountIdOf(cert.aik));
    const rec = (await this.record(peerHex, cert.deviceId, kv)) ?? { active: '', archived: [] };
    const serial = serializeRatchetState(state);
    if (archivedIndex !== undefined) {
      rec.archived.splice(archivedIndex, 1);
      if (rec.active) rec.archived.unshift(rec.active);
    } else if (fresh && rec.active) {
      rec.archived.unshift(rec.active);
    }
    rec.active = serial;
    rec.archived = rec.archived.slice(0, MAX_ARCHIVED);
    await new LocalState(kv).set(STATE_KEYS.session(peerHex, cert.deviceId), rec);
  }

  /** A new initiator session from the device's prekey bundle, which must carry its verified certificate. */
  start(cert: DeviceCertificate, bundleB64: string): RatchetState {
    const me = this.client.identity;
    const bundle = parsePreKeyBundle(b64uDecode(bundleB64));
    if (!bytesEqual(bundle.certificate.bytes, cert.bytes)) throw new CryptoError('MALFORMED', 'bundle certificate is not the one in the verified device list');
    verifyBundle(bundle, this.now());
    const self = parseDeviceCertificate(me.device.certificate);
    const init = pqxdhInitiate({ cert: self, dikSk: me.device.dikSk }, bundle);
    const prefix = encodePreKeyMessage(init.fields, new Uint8Array(0));
    return initInitiator({
      rk0: init.rk0, peerSpk: init.spk, self: addr(self), peer: addr(cert), baseKey: init.baseKey, pendingPrekey: prefix.slice(0, prefix.length - 4), now: this.now(),
      ...(init.headerEncryption ? { headerKeys: { hkA: init.hkA, hkB: init.hkB } } : {}),
    });
  }
}

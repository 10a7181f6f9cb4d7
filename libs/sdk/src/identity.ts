import {
  DEVICE_FLAG_AIK_HOLDER, DEVICE_FLAG_HEADER_ENCRYPTION,
  SUITE_V1,
  accountIdOf,
  b64uDecode,
  b64uEncode,
  createDeviceCertificate,
  createSignedDeviceList,
  encodeAccountId,
  generateSecretKey,
  pub,
  randomBytes,
} from '@umbra/crypto';

export interface LocalDevice {
  deviceId: number;
  dikSk: Uint8Array;
  dik: Uint8Array;
  flags: number;
  certificate: Uint8Array;
}

/** This device's keys and its account's current device list. Private keys never leave the device. */
export interface LocalIdentity {
  accountId: Uint8Array;
  accountIdText: string;
  aik: Uint8Array;
  /** Present only on AIK-holding devices. */
  aikSk?: Uint8Array;
  device: LocalDevice;
  deviceList: Uint8Array;
  listVersion: number;
}

export function randomDeviceId(): number {
  for (;;) {
    const b = randomBytes(4);
    const id = ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
    if (id !== 0) return id;
  }
}

/** A new account with one device that holds the account key: no phone number, no e-mail. */
export function createIdentity(now: number = Date.now()): LocalIdentity {
  const aikSk = generateSecretKey();
  const aik = pub(aikSk);
  const dikSk = generateSecretKey();
  const dik = pub(dikSk);
  const deviceId = randomDeviceId();
  // Header encryption (§4.4) is on between two devices whose certificates both set it.
  const flags = DEVICE_FLAG_AIK_HOLDER | DEVICE_FLAG_HEADER_ENCRYPTION;
  const certificate = createDeviceCertificate({ suite: SUITE_V1, aik, deviceId, dik, createdAt: now, flags }, aikSk, dikSk);
  const deviceList = createSignedDeviceList({ aik, listVersion: 1, issuedAt: now, certificates: [certificate] }, aikSk);
  const accountId = accountIdOf(aik);
  return { accountId, accountIdText: encodeAccountId(accountId), aik, aikSk, device: { deviceId, dikSk, dik, flags, certificate }, deviceList, listVersion: 1 };
}

interface StoredIdentity {
  v: 1;
  aik: string;
  aikSk?: string;
  deviceId: number;
  dikSk: string;
  flags: number;
  certificate: string;
  deviceList: string;
  listVersion: number;
}

export function serializeIdentity(id: LocalIdentity): string {
  const stored: StoredIdentity = {
    v: 1,
    aik: b64uEncode(id.aik),
    ...(id.aikSk ? { aikSk: b64uEncode(id.aikSk) } : {}),
    deviceId: id.device.deviceId,
    dikSk: b64uEncode(id.device.dikSk),
    flags: id.device.flags,
    certificate: b64uEncode(id.device.certificate),
    deviceList: b64uEncode(id.deviceList),
    listVersion: id.listVersion,
  };
  return JSON.stringify(stored);
}

export function deserializeIdentity(json: string): LocalIdentity {
  const s = JSON.parse(json) as StoredIdentity;
  if (s.v !== 1) throw new Error('unsupported identity format');
  const aik = b64uDecode(s.aik);
  const dikSk = b64uDecode(s.dikSk);
  const accountId = accountIdOf(aik);
  return {
    accountId,
    accountIdText: encodeAccountId(accountId),
    aik,
    ...(s.aikSk ? { aikSk: b64uDecode(s.aikSk) } : {}),
    device: { deviceId: s.deviceId, dikSk, dik: pub(dikSk), flags: s.flags, certificate: b64uDecode(s.certificate) },
    deviceList: b64uDecode(s.deviceList),
    listVersion: s.listVersion,
  };
}

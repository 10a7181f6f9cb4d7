/** One device of one account: the scoping key of every queue query. */
export interface DeviceAddress {
  readonly accountId: Uint8Array;
  readonly deviceId: number;
}

export function deviceKey(d: DeviceAddress): string {
  return `${Buffer.from(d.accountId).toString('hex')}:${d.deviceId}`;
}

export function parseDeviceKey(key: string): DeviceAddress {
  const [hex, dev] = key.split(':');
  return { accountId: Buffer.from(hex ?? '', 'hex'), deviceId: Number(dev) };
}

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

/** Rows affected by an UPDATE or DELETE run through TypeORM's query(), which answers [rows, count]. */
export function affectedRows(result: unknown): number {
  if (Array.isArray(result) && result.length === 2 && typeof result[1] === 'number') return result[1];
  throw new Error('unexpected result shape from an UPDATE/DELETE');
}

/** Rows of an UPDATE/DELETE … RETURNING run through TypeORM's query(), which answers [rows, count]. */
export function returnedRows<T>(result: unknown): T[] {
  if (Array.isArray(result) && result.length === 2 && Array.isArray(result[0]) && typeof result[1] === 'number') return result[0] as T[];
  throw new Error('unexpected result shape from an UPDATE/DELETE … RETURNING');
}

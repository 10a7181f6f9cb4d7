import { randomBytes } from 'node:crypto';
import { decodeAccountId, encodeAccountId } from '@umbra/crypto';
import { accountIdText, toDeliveredEnvelope } from './envelope.mapper';

describe('accountIdText (process-wide cache of bech32m account ids)', () => {
  it('answers what encodeAccountId answers, for views into larger buffers too, past the cache size', () => {
    const ids = Array.from({ length: 20_050 }, () => randomBytes(32));
    for (const id of ids) expect(accountIdText(id)).toBe(encodeAccountId(id));
    // The first ids were evicted; answers stay right.
    for (const id of ids.slice(0, 50)) expect(decodeAccountId(accountIdText(id))).toEqual(new Uint8Array(id));
    const big = randomBytes(96);
    const view = new Uint8Array(big.buffer, big.byteOffset + 32, 32);
    expect(accountIdText(view)).toBe(encodeAccountId(big.subarray(32, 64)));
  });

  it('names the sender of an envelope, and none for a server notice', () => {
    const sender = { accountId: randomBytes(32), deviceId: 3 };
    const base = { seq: '7', recipient: { accountId: randomBytes(32), deviceId: 1 }, clientMessageId: randomBytes(16), type: 2, content: Buffer.from('x'), serverTimestamp: 1, expiresAt: 0, readTtlS: 0, deleteAt: 2 };
    expect(toDeliveredEnvelope({ ...base, sender })).toMatchObject({ id: '7', senderAccountId: encodeAccountId(sender.accountId), senderDeviceId: 3, content: 'eA' });
    expect(toDeliveredEnvelope({ ...base, sender: null })).toMatchObject({ senderAccountId: null, senderDeviceId: null });
  });
});

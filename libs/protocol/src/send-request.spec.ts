import { encodeAccountId } from '@umbra/crypto';
import { SendRequestSchema } from './schemas';

const base = {
  clientMessageId: 'AAAAAAAAAAAAAAAAAAAAAA',
  recipients: [{ accountId: encodeAccountId(new Uint8Array(32).fill(7)), deviceId: 1, type: 2, content: 'AQ' }],
};

describe('send request: urgent', () => {
  it.each([true, false])('accepts urgent = %j', (urgent) => {
    expect(SendRequestSchema.parse({ ...base, urgent }).urgent).toBe(urgent);
  });

  it('leaves urgent out when the client does (not urgent)', () => {
    expect(SendRequestSchema.parse(base).urgent).toBeUndefined();
  });

  it.each(['true', 1, 0, null, {}, []])('refuses urgent = %j', (urgent) => {
    const issues = SendRequestSchema.safeParse({ ...base, urgent }).error?.issues ?? [];
    expect(issues.map((i) => i.path.join('.'))).toEqual(['urgent']);
  });
});

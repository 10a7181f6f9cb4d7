import { AckRequestSchema, EnvelopeIdSchema, FetchQuerySchema, isEnvelopeId } from './schemas';
import { LIMITS } from './limits';

describe('envelope ids (decimal strings, 1..2^63-1)', () => {
  it.each(['1', '42', '9007199254740993', '999999999999999999', LIMITS.MAX_ENVELOPE_ID])('accepts %s', (id) => {
    expect(isEnvelopeId(id)).toBe(true);
    expect(EnvelopeIdSchema.safeParse(id).success).toBe(true);
  });

  it.each(['0', '-1', '01', '1e3', ' 1', '1.0', '', '9223372036854775808', '9999999999999999999', '10000000000000000000'])('rejects %j', (id) => {
    expect(isEnvelopeId(id)).toBe(false);
    expect(EnvelopeIdSchema.safeParse(id).success).toBe(false);
  });

  it('rejects non-strings, including numbers that look right', () => {
    for (const v of [1, 2 ** 53, 1n, null, undefined, ['1'], { id: '1' }]) expect(isEnvelopeId(v)).toBe(false);
  });

  it('bounds ids wherever they enter: fetch cursor, ack and read lists', () => {
    expect(FetchQuerySchema.safeParse({ after: '9999999999999999999' }).success).toBe(false);
    expect(FetchQuerySchema.safeParse({ after: LIMITS.MAX_ENVELOPE_ID }).success).toBe(true);
    expect(AckRequestSchema.safeParse({ ids: ['1', '9223372036854775808'] }).success).toBe(false);
  });
});

import { z } from 'zod';
import { ApiError, toErrorBody } from './api-error';
import { parseOrThrow } from './zod.pipe';
import { normaliseError } from './api-exception.filter';

describe('error shape', () => {
  it('keeps code, message and details of an ApiError', () => {
    const { status, body } = toErrorBody(new ApiError('DEVICE_MISMATCH', 'nope', { missing: [] }), 'cid');
    expect(status).toBe(409);
    expect(body).toEqual({ error: { code: 'DEVICE_MISMATCH', message: 'nope', correlationId: 'cid', details: { missing: [] } } });
  });

  it('hides unknown errors behind INTERNAL', () => {
    const { status, body, internal } = toErrorBody(new Error('password=hunter2'));
    expect(status).toBe(500);
    expect(internal).toBe(true);
    expect(JSON.stringify(body)).not.toContain('hunter2');
  });

  it('maps body-parser failures to stable codes', () => {
    expect(normaliseError({ type: 'entity.parse.failed' })).toMatchObject({ code: 'MALFORMED_JSON' });
    expect(normaliseError({ type: 'entity.too.large' })).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
  });

  it('uses the error code an issue names, else VALIDATION_FAILED', () => {
    const schema = z.object({
      a: z.string().superRefine((v, ctx) => {
        if (v.length > 2) ctx.addIssue({ code: 'custom', message: 'too long', params: { code: 'ENVELOPE_TOO_LARGE' } });
      }),
      b: z.number(),
    });
    expect(() => parseOrThrow(schema, { a: 'abc', b: 1 })).toThrow(expect.objectContaining({ code: 'ENVELOPE_TOO_LARGE' }));
    expect(() => parseOrThrow(schema, { a: 'a', b: 'x' })).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
  });
});

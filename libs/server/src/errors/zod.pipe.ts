import { type PipeTransform } from '@nestjs/common';
import type { z } from 'zod';
import { isErrorCode, type ErrorCode } from '@umbra/protocol';
import { ApiError } from './api-error';

/** Validates against a protocol schema; the first issue that names an error code decides the code. */
export function parseOrThrow<T extends z.ZodType>(schema: T, value: unknown): z.infer<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = result.error.issues.slice(0, 10).map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
  let code: ErrorCode = 'VALIDATION_FAILED';
  for (const issue of result.error.issues) {
    const named = (issue as { params?: { code?: unknown } }).params?.code;
    if (isErrorCode(named)) {
      code = named;
      break;
    }
  }
  const first = issues[0];
  throw new ApiError(code, first ? `${first.path || 'body'}: ${first.message}` : 'invalid input', { issues });
}

export class ZodPipe<T extends z.ZodType> implements PipeTransform<unknown, z.infer<T>> {
  constructor(private readonly schema: T) {}

  transform(value: unknown): z.infer<T> {
    return parseOrThrow(this.schema, value);
  }
}

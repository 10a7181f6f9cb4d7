import { CryptoError } from '@umbra/crypto';
import { KtVerificationError, UmbraApiError } from '@umbra/sdk';

/** The server's messages are written for developers; these say what happened to the user. */
const FRIENDLY: Partial<Record<string, string>> = {
  HANDLE_NOT_FOUND: 'no account has that handle',
  ACCOUNT_NOT_FOUND: 'no such account',
  HANDLE_TAKEN: 'that handle belongs to another account',
  RATE_LIMITED: 'the server asks to slow down; try again in a minute',
  UNAUTHENTICATED: 'this device is not registered: run umbra register',
};

/** One line, without internal names or a doubled code. */
export function describeError(err: unknown): { code: string | null; message: string; reason?: string } {
  if (err instanceof KtVerificationError) {
    return { code: 'KT_VERIFICATION_FAILED', reason: err.reason, message: `${err.message} (nothing is encrypted to keys that fail this check)` };
  }
  if (err instanceof UmbraApiError) {
    const raw = err.message.startsWith(`${err.code}: `) ? err.message.slice(err.code.length + 2) : err.message;
    if (err.status === 0) return { code: err.code, message: raw };
    return { code: err.code, message: FRIENDLY[err.code] ?? raw };
  }
  if (err instanceof CryptoError) return { code: err.code, message: err.message };
  if (err instanceof Error) return { code: null, message: err.message };
  return { code: null, message: String(err) };
}

export function formatError(err: unknown): string {
  const { code, message } = describeError(err);
  return code && !(err instanceof UmbraApiError && err.status === 0) && !(err instanceof CryptoError) ? `${message} (${code})` : message;
}

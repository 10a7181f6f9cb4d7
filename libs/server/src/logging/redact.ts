/** A path segment that may be a capability or an identifier: 16 or more base64url characters. */
const OPAQUE_SEGMENT = /^[A-Za-z0-9_-]{16,}$/;

/**
 * A request path fit for logs: opaque segments (attachment ids are download capabilities,
 * provisioning channels are link capabilities, account ids are not for logs either) become `:id`,
 * and the query string is dropped.
 */
export function redactPath(path: string): string {
  const bare = path.split('?')[0] ?? '';
  return bare
    .split('/')
    .map((s) => (OPAQUE_SEGMENT.test(s) ? ':id' : s))
    .join('/');
}

import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type http from 'node:http';
import path from 'node:path';

/** The built web client (clients/web → dist/web) and the Content-Security-Policy it is served with. */
export interface WebRoot {
  dir: string;
  csp: string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.webmanifest': 'application/manifest+json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.wasm': 'application/wasm',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * The origin(s) presigned attachment URLs point at, for connect-src: the S3 endpoint clients are
 * given (S3_PUBLIC_ENDPOINT, else S3_ENDPOINT), its bucket host in virtual-hosted style, or AWS's
 * regional bucket host when no endpoint is set.
 */
export function s3ConnectSources(env: Record<string, string | undefined>): string[] {
  const bucket = env.S3_BUCKET ?? 'umbra-attachments';
  const endpoint = env.S3_PUBLIC_ENDPOINT ?? env.S3_ENDPOINT;
  if (!endpoint) return [`https://${bucket}.s3.${env.S3_REGION ?? 'us-east-1'}.amazonaws.com`];
  const url = new URL(endpoint);
  const pathStyle = (env.S3_FORCE_PATH_STYLE ?? 'true') !== 'false';
  return pathStyle ? [url.origin] : [url.origin, `${url.protocol}//${bucket}.${url.host}`];
}

/**
 * No inline script or style, nothing from other origins but the attachment store, no framing.
 * 'self' in connect-src covers the socket (ws:/wss: on the same host, CSP level 3).
 */
export function webContentSecurityPolicy(connectSources: string[]): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' blob:",
    "media-src 'self' blob:",
    "font-src 'self'",
    `connect-src ${["'self'", ...connectSources].join(' ')}`,
    "worker-src 'self'",
    "manifest-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
    "object-src 'none'",
  ].join('; ');
}

/** Headers on every file of the web client (docs/operations.md "Web client" lists the same for nginx). */
export function webHeaders(csp: string): Record<string, string> {
  return {
    'content-security-policy': csp,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'x-frame-options': 'DENY',
    'cross-origin-opener-policy': 'same-origin',
    'permissions-policy': 'camera=(self), microphone=(self), geolocation=(), payment=()',
  };
}

/**
 * Serves a GET/HEAD for a file of the web client: `/` is index.html (never cached without
 * revalidation), /assets/* carry content hashes in their names (cached for a year, immutable).
 * Resolves false when the path is not a file of the build, so the caller answers 404.
 */
export async function serveWeb(web: WebRoot, req: http.IncomingMessage, res: http.ServerResponse): Promise<boolean> {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  let pathname: string;
  try {
    pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://edge').pathname);
  } catch {
    return false;
  }
  if (pathname.includes('\0')) return false;
  const root = path.resolve(web.dir);
  const file = path.resolve(root, pathname === '/' ? 'index.html' : `.${pathname}`);
  if (!file.startsWith(`${root}${path.sep}`)) return false;
  const info = await stat(file).catch(() => undefined);
  if (!info?.isFile()) return false;
  const hashed = pathname.startsWith('/assets/');
  res.writeHead(200, {
    ...webHeaders(web.csp),
    'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
    'content-length': String(info.size),
    'cache-control': hashed ? 'public, max-age=31536000, immutable' : 'no-cache',
    'last-modified': info.mtime.toUTCString(),
  });
  if (req.method === 'HEAD') {
    res.end();
    return true;
  }
  createReadStream(file)
    .on('error', () => res.destroy())
    .pipe(res);
  return true;
}

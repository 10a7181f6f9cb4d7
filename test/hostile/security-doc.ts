import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { DEFAULT_POW_DIFFICULTY, LIMITS, MAX_SOCKET_FRAME_BYTES, RATE_LIMITS } from '@umbra/protocol';
import { ENV_SCHEMA } from '../../libs/server/src/config/config';

/**
 * The limits table of docs/security.md, generated from libs/protocol/src/limits.ts (values and doc
 * comments) and the config schema's defaults, so the document cannot drift from the code.
 */
export const BEGIN = '<!-- limits:begin (generated from libs/protocol/src/limits.ts and ENV_SCHEMA by test/hostile/security-doc.test.ts; UMBRA_WRITE_DOCS=1 rewrites it) -->';
export const END = '<!-- limits:end -->';

/** Configuration variables that bound what a client can make the servers do or keep. */
const LIMIT_ENV = /^(RATE_LIMIT_(?!REDIS)|QUEUE_MAX_|ATTACHMENT_|TOKEN_TTL_S|POW_DIFFICULTY|MAX_RETENTION_S|DEVICE_SET_CACHE_TTL_MS|TRUSTED_PROXIES|REDIS_COMMAND_TIMEOUT_MS)/;

function docComments(source: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of source.matchAll(/\/\*\*((?:(?!\*\/)[\s\S])*)\*\/\s*(?:export const\s+)?([A-Z][A-Z0-9_]*)\s*[:=]/g)) {
    out.set(m[2]!, m[1]!.split('\n').map((l) => l.replace(/^\s*\*\s?/, '').trim()).filter(Boolean).join(' '));
  }
  for (const [k, v] of Object.entries(UNCOMMENTED)) if (!out.has(k)) out.set(k, v);
  return out;
}

/** Limits whose constant carries no doc comment in limits.ts. */
const UNCOMMENTED: Record<string, string> = {
  MAX_AUTH_RESPONSE_BYTES: 'Bytes of an AuthResponse (PROTOCOL.md §1), decoded.',
  MAX_HANDLE_CLAIM_BYTES: 'Bytes of a SignedHandleClaim (PROTOCOL.md §1), decoded.',
  HANDLE_MIN_LENGTH: 'Shortest handle.',
  HANDLE_MAX_LENGTH: 'Longest handle.',
  HANDLE_PATTERN: 'A handle after canonicalisation (NFKC, ASCII lower case).',
  CLIENT_MESSAGE_ID_BYTES: 'Bytes of a clientMessageId.',
  AUTH_NONCE_BYTES: 'Bytes of an auth challenge nonce.',
  POW_SOLUTION_BYTES: 'Bytes of a proof-of-work solution.',
};

function human(name: string, v: unknown): string {
  if (v instanceof RegExp) return `\`${v.source}\``;
  if (typeof v === 'string') return `\`${v}\``;
  if (Array.isArray(v)) return v.length ? `\`${v.join(', ')}\`` : '(none)';
  if (typeof v !== 'number') return `\`${String(v)}\``;
  const n = v.toLocaleString('en-US');
  const unit = (size: number, units: [number, string][]) => {
    for (const [d, u] of units) if (size >= d && size % d === 0) return `${size / d} ${u}`;
    return undefined;
  };
  let h: string | undefined;
  if (v > 1e12) h = undefined;
  else if (/BYTES/.test(name) && v >= 1024) h = unit(v, [[1024 ** 3, 'GiB'], [1024 ** 2, 'MiB'], [1024, 'KiB']]);
  else if (/_S$|_S_|_TTL_S|TIMEOUT_S/.test(name) && v >= 60) h = unit(v, [[86_400, 'd'], [3600, 'h'], [60, 'min']]);
  else if (/_MS$/.test(name) && v >= 1000) h = unit(v, [[86_400_000, 'd'], [3_600_000, 'h'], [60_000, 'min'], [1000, 's']]);
  return h ? `${n} (${h})` : n;
}

const cell = (s: string) => s.replace(/\|/g, '\\|');

export function renderLimitsTable(): string {
  const comments = docComments(readFileSync(resolve(process.cwd(), 'libs/protocol/src/limits.ts'), 'utf8'));
  const lines: string[] = [BEGIN, '', '**Protocol limits** (`LIMITS`, fixed in code; `DEFAULT_*` ones are the defaults of a setting below):', '', '| limit | value | what it bounds |', '|---|---|---|'];
  for (const [k, v] of Object.entries(LIMITS)) lines.push(`| \`${k}\` | ${human(k, v)} | ${cell(comments.get(k) ?? '')} |`);
  lines.push(`| \`MAX_SOCKET_FRAME_BYTES\` | ${human('MAX_SOCKET_FRAME_BYTES', MAX_SOCKET_FRAME_BYTES)} | ${cell(comments.get('MAX_SOCKET_FRAME_BYTES') ?? '')} |`);
  lines.push(`| \`DEFAULT_POW_DIFFICULTY\` | ${DEFAULT_POW_DIFFICULTY} | ${cell(comments.get('DEFAULT_POW_DIFFICULTY') ?? '')} |`);
  lines.push('', '**Rate limits** (`RATE_LIMITS`, the defaults of the `RATE_LIMIT_*` settings):', '', '| limit | default | what it bounds |', '|---|---|---|');
  for (const [k, v] of Object.entries(RATE_LIMITS)) lines.push(`| \`${k}\` | ${human(k, v)} | ${cell(comments.get(k) ?? '')} |`);
  const defaults = ENV_SCHEMA.parse({}) as Record<string, unknown>;
  lines.push('', '**Settings that bound abuse** (environment, validated at boot; [operations.md](operations.md) describes each):', '', '| variable | default |', '|---|---|');
  for (const k of Object.keys(ENV_SCHEMA.shape).filter((n) => LIMIT_ENV.test(n)).sort()) {
    const v = defaults[k];
    lines.push(`| \`${k}\` | ${v === undefined ? '(unset)' : human(k, v)} |`);
  }
  lines.push('', END);
  return lines.join('\n');
}

export function replaceLimitsBlock(doc: string, table: string): string {
  const a = doc.indexOf(BEGIN);
  const b = doc.indexOf(END);
  if (a < 0 || b < a) throw new Error('docs/security.md has no limits block');
  return doc.slice(0, a) + table + doc.slice(b + END.length);
}

import fc from 'fast-check';
import { LIMITS } from '@umbra/protocol';

/**
 * Hand-written fast-check arbitraries for hostile input (zod-fast-check is not installed: it only
 * generates values a schema accepts, and the point here is the values it refuses).
 */

/** Ids and numbers around every precision and range edge a JS `Number()` or a bigint column meets. */
export const BOUNDARY_NUMBER_TEXT = [
  '0', '-0', '1', '-1', '1.5', '1e3', '1E+2', '0.0', '01', '0x10', ' 1', '1 ',
  '4294967295', '4294967296', '2147483648', '-2147483649',
  '9007199254740991', '9007199254740992', '9007199254740993', '-9007199254740993',
  '9223372036854775807', '9223372036854775808', '-9223372036854775808', '-9223372036854775809', '9999999999999999999', '10000000000000000000',
  '18446744073709551615', '18446744073709551616', '99999999999999999999999999999', '1e308', '1e309', '-1e309', '5e-324', '1e-400',
  'NaN', 'Infinity', '-Infinity', '',
];

/** Handles and strings with the unicode edge cases: NFKC oddities, RTL, zero-width, 4-byte chars, case folding traps. */
export const UNICODE_EDGES = [
  'ＡＢＣ', 'ａｂｃ', 'ﬃ_x', 'ǅab', 'İstanbul', 'ß_ss', 'K_kelvin', 'Å_angstrom', '①②③', '𝔞𝔟𝔠', '𝟙𝟚𝟛', 'ｱｲｳ',
  'abc\u202edcba', '\u202aabc\u202c', 'ab\u200bc', 'ab\u200dc', 'ab\u2060c', '\ufeffabc', 'abc\u0301', 'a\u0000bc', 'abc\n', ' abc',
  '😀😀😀', 'ab😀', '\u{10ffff}ab', 'عربي', 'עברית', 'ǆǆǆ', 'ᴀʙᴄ', '\u1e9e', 'ı_i', 'аbc' /* Cyrillic a */, '...', '___', 'a', 'ab',
  'a'.repeat(33), 'a'.repeat(128), 'a'.repeat(129), 'a'.repeat(4096),
];

/** Lone surrogate halves and other byte sequences only a raw URL can carry (percent-encoded). */
export const RAW_PATH_SEGMENTS = [
  '%ED%A0%80', '%ED%B0%80', '%F4%90%80%80', '%C0%AF', '%E0%80%AF', '%FF%FE', '%00', '%', '%z', '%zz', '%2', '%2F', '%2e%2e', '..', '.',
  '%E2%80%AE', '%E2%80%8B', '%EF%BB%BF', 'a%20b', '%25', '%C3%9F', '%F0%9F%98%80',
];

/** base64url the decoder must refuse, and encodings on its edges. */
export const BASE64_EDGES = [
  '', 'A', 'AB', 'ABC', 'AAAA==', 'AA==', 'AAA=', 'AB+/', 'AB/+', 'A B', 'AA\n', '@@@@', '____', '----', 'AAAA'.repeat(2000),
  'Zg', 'Zh' /* non-canonical trailing bits */, 'Zm8', 'Zm9', 'AAAAAAAAAAAAAAAAAAAAAA', 'AAAAAAAAAAAAAAAAAAAAAAA', '\u0000', 'ＡＡＡＡ',
];

export const VALID_LOOKING_ACCOUNT_TEXT = ['um1', 'UM1', 'um1' + 'q'.repeat(58), 'bc1' + 'q'.repeat(58), 'um1' + 'q'.repeat(57)];

const unicodeString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.constantFrom(...UNICODE_EDGES),
);

export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: unicodeString, weight: 4 },
  { arbitrary: fc.constantFrom(...BOUNDARY_NUMBER_TEXT), weight: 3 },
  { arbitrary: fc.constantFrom(...BASE64_EDGES), weight: 3 },
  { arbitrary: fc.constantFrom(...VALID_LOOKING_ACCOUNT_TEXT), weight: 1 },
  { arbitrary: fc.base64String({ maxLength: 64 }), weight: 1 },
  { arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString('base64url')), weight: 2 },
  { arbitrary: fc.integer({ min: 1, max: 20_000 }).map((n) => 'A'.repeat(n)), weight: 1 },
);

export const hostileNumber: fc.Arbitrary<number> = fc.oneof(
  fc.constantFrom(0, -0, 1, -1, 0.5, 1.5, 2 ** 31, 2 ** 32, 2 ** 32 - 1, 2 ** 53 - 1, 2 ** 53, 2 ** 53 + 2, 2 ** 63, 2 ** 64, -(2 ** 63), 1e308, -1e308, Number.MIN_VALUE, LIMITS.MAX_EXPIRES_AT_MS + 1),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }).map(Number),
);

/** Any JSON value, biased to the edges, with the protocol's own field names as keys. */
export function hostileJson(fieldNames: string[]): fc.Arbitrary<unknown> {
  const key = fc.oneof(fc.constantFrom(...fieldNames, '__proto__', 'constructor', 'prototype', ''), fc.string({ maxLength: 12 }));
  const { value } = fc.letrec<{ value: unknown }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.constant(null),
      fc.boolean(),
      hostileNumber,
      hostileString,
      fc.array(tie('value'), { maxLength: 6 }),
      fc.dictionary(key, tie('value'), { maxKeys: 6 }),
    ),
  }));
  return value;
}

/** Replace, delete or add one field somewhere in a valid-looking template (one level of nesting deep). */
export function mutated(template: Record<string, unknown>, fieldNames: string[]): fc.Arbitrary<unknown> {
  const keys = Object.keys(template);
  const anyValue = hostileJson(fieldNames);
  return fc.oneof(
    fc.tuple(fc.constantFrom(...keys), anyValue).map(([k, v]) => ({ ...template, [k]: v })),
    fc.constantFrom(...keys).map((k) => {
      const copy = { ...template };
      delete copy[k];
      return copy;
    }),
    fc.tuple(fc.string({ minLength: 1, maxLength: 10 }).filter((k) => !keys.includes(k)), anyValue).map(([k, v]) => ({ ...template, [k]: v })),
    fc.tuple(fc.constantFrom(...keys), fc.string({ maxLength: 8 }), anyValue).map(([k, inner, v]) => {
      const cur = template[k];
      if (Array.isArray(cur)) return { ...template, [k]: [...cur.map((e) => (typeof e === 'object' && e ? { ...e, [inner]: v } : v))] };
      if (cur && typeof cur === 'object') return { ...template, [k]: { ...(cur as object), [inner]: v } };
      return { ...template, [k]: [cur, v] };
    }),
  );
}

/** Raw request bodies no JSON serialiser produces: deep nesting, broken syntax, numbers beyond precision, huge strings. */
export const rawBody: fc.Arbitrary<string> = fc.oneof(
  fc.integer({ min: 1, max: 30_000 }).map((n) => '['.repeat(n) + ']'.repeat(n)),
  fc.integer({ min: 1, max: 12_000 }).map((n) => '{"a":'.repeat(n) + '1' + '}'.repeat(n)),
  fc.integer({ min: 1, max: 30_000 }).map((n) => '['.repeat(n)),
  fc.constantFrom(
    '', ' ', 'null', 'true', '0', '"str"', '[]', '{}', '{', '}', '{"a":}', '{"a":1,}', "{'a':1}", '{"a":1}{"b":2}', '\ufeff{}', '{"a":NaN}', '{"a":Infinity}',
    '{"__proto__":{"admin":true}}', '{"constructor":{"prototype":{"x":1}}}', '{"a":"\\ud800"}', '{"a":"\\u0000"}', '{"a":"\\x41"}', '\u0000',
  ),
  fc.tuple(fc.constantFrom('size', 'limit', 'expiresAt', 'readTtlS', 'deviceId', 'ids', 'after'), fc.constantFrom(...BOUNDARY_NUMBER_TEXT.filter((t) => /^-?[0-9]/.test(t) && !/\s/.test(t)))).map(
    ([k, n]) => `{"${k}":${n}}`,
  ),
  fc.integer({ min: 1_000, max: 200_000 }).map((n) => JSON.stringify({ a: 'x'.repeat(n) })),
  fc.integer({ min: 1, max: 5_000 }).map((n) => JSON.stringify({ ids: Array.from({ length: n }, (_, i) => String(i + 1)) })),
);

export const contentType: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: fc.constantFrom('application/json', 'application/json; charset=utf-8', 'Application/JSON'), weight: 17 },
  {
    arbitrary: fc.constantFrom('application/json; charset=utf-16', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', '', 'application/json, text/plain'),
    weight: 3,
  },
);

/** One path segment, already percent-encoded. */
export function pathSegment(valid: string[]): fc.Arbitrary<string> {
  return fc.oneof(
    { arbitrary: fc.constantFrom(...valid), weight: 2 },
    { arbitrary: hostileString.filter((s) => s.length > 0).map(encodeSegment), weight: 4 },
    { arbitrary: fc.constantFrom(...RAW_PATH_SEGMENTS), weight: 2 },
    { arbitrary: fc.constantFrom(...UNICODE_EDGES).map(encodeSegment), weight: 2 },
  );
}

/** UTF-8 percent-encoding of everything but unreserved characters (lone surrogates become U+FFFD). */
export function encodeSegment(s: string): string {
  return [...Buffer.from(s, 'utf8')].map((b) => (/[A-Za-z0-9_.~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`)).join('');
}

/** A query string: known and unknown keys, repeated keys, bracket syntax (qs objects and arrays). */
export function queryString(keys: string[]): fc.Arbitrary<string> {
  const k = fc.oneof(fc.constantFrom(...keys, 'x'), fc.constantFrom(...keys).map((x) => `${x}[]`), fc.constantFrom(...keys).map((x) => `${x}[a]`));
  const v = fc.oneof(fc.constantFrom(...BOUNDARY_NUMBER_TEXT), hostileString);
  return fc.array(fc.tuple(k, v), { maxLength: 4 }).map((pairs) => (pairs.length ? '?' + pairs.map(([a, b]) => `${encodeSegment(a).replace(/%5B/g, '[').replace(/%5D/g, ']')}=${encodeSegment(b)}`).join('&') : ''));
}

type Path = (string | number)[];

function leafPaths(v: unknown, at: Path = []): Path[] {
  if (Array.isArray(v)) return [at, ...v.flatMap((x, i) => leafPaths(x, [...at, i]))];
  if (v && typeof v === 'object') return Object.entries(v).flatMap(([k, x]) => leafPaths(x, [...at, k]));
  return [at];
}

function setAt(v: unknown, path: Path, value: unknown): unknown {
  if (path.length === 0) return value;
  const [head, ...rest] = path;
  if (Array.isArray(v)) {
    const copy = [...(v as unknown[])];
    copy[head as number] = setAt(copy[head as number], rest, value);
    return copy;
  }
  const copy = { ...(v as Record<string, unknown>) };
  copy[head as string] = setAt(copy[head as string], rest, value);
  return copy;
}

const RAW = '\u0000raw:';
/** A boundary value as a string, as a JSON number written verbatim (beyond any JS precision), or as an array of them. */
const boundaryLeaf: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(...BOUNDARY_NUMBER_TEXT),
  fc.constantFrom(...BOUNDARY_NUMBER_TEXT.filter((t) => /^-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$/.test(t))).map((t) => RAW + t),
  fc.array(fc.constantFrom(...BOUNDARY_NUMBER_TEXT), { minLength: 1, maxLength: 3 }),
  fc.constantFrom(...BASE64_EDGES, ...UNICODE_EDGES),
);

/**
 * The template itself, and the template with one leaf (or one array) at a time set to a boundary value:
 * the cases that reach furthest into a handler (ids at 2^53 and 2^63, numbers past any precision).
 */
export function edgeBody(template: Record<string, unknown>): fc.Arbitrary<string> {
  const paths = leafPaths(template).filter((p) => p.length > 0);
  return fc.oneof(
    { arbitrary: fc.constant(template), weight: 1 },
    { arbitrary: fc.tuple(fc.constantFrom(...paths), boundaryLeaf).map(([p, v]) => setAt(template, p, v)), weight: 6 },
  ).map((v) => JSON.stringify(v).replace(/"\\u0000raw:([^"]*)"/g, '$1'));
}

/** One known query key at a boundary value. */
export function edgeQuery(keys: string[]): fc.Arbitrary<string> {
  return fc.tuple(fc.constantFrom(...keys), fc.oneof(fc.constantFrom(...BOUNDARY_NUMBER_TEXT), fc.constantFrom(...UNICODE_EDGES))).map(([k, v]) => `?${k}=${encodeSegment(v)}`);
}

/** Every known query key at every boundary number, for an exhaustive pass before the random one. */
export function allEdgeQueries(keys: string[]): string[] {
  return keys.flatMap((k) => BOUNDARY_NUMBER_TEXT.map((v) => `?${k}=${encodeSegment(v)}`));
}

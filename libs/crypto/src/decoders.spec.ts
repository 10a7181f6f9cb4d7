import { decodeContent, encodeContent } from './content';
import { deserializeSenderChain, newSenderChain, serializeSenderChain } from './session/sender-keys';
import { cryptoOutcome } from './testing/fixtures';

const bytes = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
const base = { v: 1 as const, id: 'AAAAAAAAAAAAAAAAAAAAAA', ts: 1_700_000_000_000, k: 'text', text: 'hi' };


describe('decoders reject malformed input with a CryptoError only', () => {
  it('Content: a timer outside §7 (t in 1..2^32-1 seconds, m send|read), a bad ts or gid', () => {
    expect(decodeContent(bytes({ ...base, exp: { t: 30, m: 'read' } })).exp).toEqual({ t: 30, m: 'read' });
    expect(decodeContent(encodeContent({ ...base, k: 'text', exp: { t: 0xffff_ffff, m: 'send' } })).exp?.t).toBe(0xffff_ffff);
    for (const bad of [
      { ...base, exp: { t: 0, m: 'send' } },
      { ...base, exp: { t: 2 ** 32, m: 'send' } },
      { ...base, exp: { t: 1.5, m: 'send' } },
      { ...base, exp: { t: 5, m: 'later' } },
      { ...base, exp: null },
      { ...base, exp: 'soon' },
      { ...base, ts: -1 },
      { ...base, ts: 1.5 },
      { ...base, gid: 7 },
    ]) {
      expect(`${JSON.stringify(bad)} → ${cryptoOutcome(() => decodeContent(bytes(bad)))}`).toBe(`${JSON.stringify(bad)} → MALFORMED`);
    }
  });

  it('sender chain state: not JSON, wrong shapes, bad base64url', () => {
    const good = serializeSenderChain(newSenderChain(new Uint8Array(32).fill(1), 0, 1_700_000_000_000));
    expect(deserializeSenderChain(good).epoch).toBe(0);
    const o = JSON.parse(good) as Record<string, unknown>;
    const cases = ['{', 'null', '[]', JSON.stringify({ ...o, ck: 5 }), JSON.stringify({ ...o, epoch: -1 }), JSON.stringify({ ...o, skipped: 'x' }),
      JSON.stringify({ ...o, skipped: [{ it: 1 }] }), JSON.stringify({ ...o, sigPk: '!!' }), JSON.stringify({ ...o, created: undefined })];
    for (const c of cases) expect(`${c.slice(0, 40)} → ${cryptoOutcome(() => deserializeSenderChain(c))}`).toBe(`${c.slice(0, 40)} → MALFORMED`);
  });
});

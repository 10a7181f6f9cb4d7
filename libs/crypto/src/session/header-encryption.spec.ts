import { DEVICE_FLAG_AIK_HOLDER, DEVICE_FLAG_HEADER_ENCRYPTION } from '../identity';
import { hexEncode } from '../bytes';
import { cryptoOutcome, establishedPair, testDevice } from '../testing/fixtures';
import { ENC_HEADER_BYTES, deserializeRatchetState, ratchetDecrypt, ratchetEncrypt, serializeRatchetState, type RatchetState } from './ratchet';

const te = new TextEncoder();
const td = new TextDecoder();
const now = Date.now();
const HE = DEVICE_FLAG_AIK_HOLDER | DEVICE_FLAG_HEADER_ENCRYPTION;

function send(s: RatchetState, text: string): { state: RatchetState; message: Uint8Array } {
  return ratchetEncrypt(s, te.encode(text), now);
}


describe('§4.4 header encryption', () => {
  const a = testDevice(now, HE);
  const b = testDevice(now, HE);
  const plain = testDevice(now);

  it('is on iff both certificates set flag bit1', () => {
    expect(establishedPair(a, b).a.he).toBe(true);
    expect(establishedPair(a, b).b.he).toBe(true);
    expect(establishedPair(a, plain).a.he).toBe(false);
    expect(establishedPair(plain, b).b.he).toBe(false);
  });

  it('round trip both ways; flags bit0 set, 69-byte EncHeader that hides DHs and counters', () => {
    let { a: sa, b: sb } = establishedPair(a, b);
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 5; i++) {
        const r = send(sb, `b${round}.${i}`);
        sb = r.state;
        expect(r.message[1]).toBe(1);
        expect(r.message.length).toBe(2 + ENC_HEADER_BYTES + 4 + 256 + 16);
        expect(hexEncode(r.message)).not.toContain(hexEncode(sb.dhsPub));
        const got = ratchetDecrypt(sa, r.message, now);
        sa = got.state;
        expect(td.decode(got.content)).toBe(`b${round}.${i}`);
      }
      const r = send(sa, `a${round}`);
      sa = r.state;
      const got = ratchetDecrypt(sb, r.message, now);
      sb = got.state;
      expect(td.decode(got.content)).toBe(`a${round}`);
    }
  });

  it('decrypts out of order across DH ratchet steps (skipped keys indexed by HKr) and rejects replays', () => {
    let { a: sa, b: sb } = establishedPair(a, b);
    const old: Uint8Array[] = [];
    for (let i = 0; i < 3; i++) {
      const r = send(sb, `old${i}`);
      sb = r.state;
      old.push(r.message);
    }
    sa = ratchetDecrypt(sa, old[2]!, now).state;
    const reply = send(sa, 'reply');
    sa = reply.state;
    sb = ratchetDecrypt(sb, reply.message, now).state;
    const fresh = send(sb, 'new chain');
    sb = fresh.state;
    sa = ratchetDecrypt(sa, fresh.message, now).state;
    expect(sa.chains).toHaveLength(2);
    for (const i of [1, 0]) {
      const r = ratchetDecrypt(sa, old[i]!, now);
      sa = r.state;
      expect(td.decode(r.content)).toBe(`old${i}`);
    }
    expect(sa.skipped).toHaveLength(0);
    const before = serializeRatchetState(sa);
    expect(cryptoOutcome(() => ratchetDecrypt(sa, old[0]!, now))).toBe('DECRYPT_FAILED');
    expect(cryptoOutcome(() => ratchetDecrypt(sa, fresh.message, now))).toBe('REPLAY');
    expect(serializeRatchetState(sa)).toBe(before);
  });

  it('accepts a skip of exactly 2000 and rejects 2001', () => {
    const { a: sa0, b: sb } = establishedPair(a, b);
    let sa = sa0;
    const msgs: Uint8Array[] = [];
    for (let i = 0; i <= 2001; i++) {
      const r = send(sa, String(i));
      sa = r.state;
      msgs.push(r.message);
    }
    // sb has received N = 0 of this chain (the first message), so msgs[k] carries N = k + 1.
    expect(cryptoOutcome(() => ratchetDecrypt(sb, msgs[2001]!, now))).toBe('TOO_MANY_SKIPPED');
    const got = ratchetDecrypt(sb, msgs[2000]!, now);
    expect(td.decode(got.content)).toBe('2000');
    expect(got.state.skipped).toHaveLength(2000);
    expect(td.decode(ratchetDecrypt(got.state, msgs[0]!, now).content)).toBe('0');
    expect(cryptoOutcome(() => ratchetDecrypt(got.state, msgs[2000]!, now))).toBe('REPLAY');
  });

  it('rejects every single-bit change of a message and leaves the state unchanged', () => {
    const { a: sa, b: sb } = establishedPair(a, b);
    const msg = send(sa, 'tamper me').message;
    const before = serializeRatchetState(sb);
    const accepted: number[] = [];
    for (let i = 0; i < msg.length; i++) {
      const t = msg.slice();
      t[i]! ^= 0x01;
      if (cryptoOutcome(() => ratchetDecrypt(sb, t, now)) === 'ok') accepted.push(i);
    }
    expect(accepted).toEqual([]);
    expect(serializeRatchetState(sb)).toBe(before);
    expect(cryptoOutcome(() => ratchetDecrypt(sb, msg, now))).toBe('ok');
  });

  it('rejects a message whose flags bit0 differs from the session mode', () => {
    const he = establishedPair(a, b);
    const pl = establishedPair(plain, testDevice(now));
    expect(cryptoOutcome(() => ratchetDecrypt(pl.b, send(he.a, 'x').message, now))).toBe('MALFORMED');
    expect(cryptoOutcome(() => ratchetDecrypt(he.b, send(pl.a, 'x').message, now))).toBe('MALFORMED');
  });

  it('serialises the header keys (§4.5) and keeps working after a round trip', () => {
    let { a: sa, b: sb } = establishedPair(a, b);
    const json = JSON.parse(serializeRatchetState(sb)) as Record<string, unknown>;
    expect(json.he).toBe(true);
    for (const k of ['hks', 'hkr', 'nhks', 'nhkr']) expect(typeof json[k]).toBe('string');
    sb = deserializeRatchetState(serializeRatchetState(sb));
    sa = deserializeRatchetState(serializeRatchetState(sa));
    const r = send(sb, 'after restore');
    expect(td.decode(ratchetDecrypt(sa, r.message, now).content)).toBe('after restore');
  });

  it('state decoding rejects malformed input with a CryptoError only', () => {
    const { b: sb } = establishedPair(a, b);
    const good = JSON.parse(serializeRatchetState(sb)) as Record<string, unknown>;
    const bad = [
      'not json',
      'null',
      '[]',
      JSON.stringify({ ...good, v: 2 }),
      JSON.stringify({ ...good, he: 'yes' }),
      JSON.stringify({ ...good, nhkr: undefined }),
      JSON.stringify({ ...good, rk: 'AA' }),
      JSON.stringify({ ...good, rk: 'a+b' }),
      JSON.stringify({ ...good, ns: -1 }),
      JSON.stringify({ ...good, skipped: [{ chain: 'x', n: 0, mk: 'AA', t: 0 }] }),
      JSON.stringify({ ...good, chains: 'x' }),
      JSON.stringify({ ...good, he: false }),
    ];
    for (const s of bad) expect({ s, code: cryptoOutcome(() => deserializeRatchetState(s)) }).toEqual({ s, code: 'MALFORMED' });
  });
});

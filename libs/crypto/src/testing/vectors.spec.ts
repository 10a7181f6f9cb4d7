import { readFileSync } from 'node:fs';
import { ml_kem1024 } from '@noble/post-quantum/ml-kem.js';
import { hexDecode, hexEncode } from '../bytes';
import { CryptoError } from '../errors';
import { decodeContent, envelopeExpiry, expiryAfterRead, pad, unpad } from '../content';
import { accountIdOf, decodeAccountId, encodeAccountId } from '../identity';
import { ecdh, hkdf, pub, sign, taggedHash, verify } from '../primitives';
import { safetyNumber } from '../safety-number';
import { initInitiator, initResponder, ratchetDecrypt, ratchetEncrypt, serializeRatchetState, type RatchetState } from '../session/ratchet';
import { chainFromSkdm, parseSenderKeyMessage, senderKeyDecrypt, type SenderChain } from '../session/sender-keys';
import { generateVectors, outcomeOf, renderVectorFile, type Json } from './vectors';
import { cryptoOutcome } from './fixtures';

type Obj = { [k: string]: Json };
const DIR = `${process.cwd()}/libs/crypto/vectors`;
const FILES = ['primitives.json', 'identity.json', 'pqxdh.json', 'ratchet.json', 'sender-keys.json', 'envelope-content.json', 'safety-numbers.json', 'kt-merkle.json'];
const h = hexDecode;
const x = hexEncode;
const load = (name: string): Obj => JSON.parse(readFileSync(`${DIR}/${name}`, 'utf8')) as Obj;
const o = (v: Json | undefined): Obj => v as Obj;
const arr = (v: Json | undefined): Obj[] => v as Obj[];
const s = (v: Json | undefined): string => v as string;

/** Every object in the tree that names a check and its expected outcome. */
function checkCases(v: Json, out: Obj[] = []): Obj[] {
  if (Array.isArray(v)) for (const e of v) checkCases(e, out);
  else if (v && typeof v === 'object') {
    if (typeof v.check === 'string' && typeof v.outcome === 'string') out.push(v);
    for (const e of Object.values(v)) checkCases(e, out);
  }
  return out;
}


describe('§14 test vectors (libs/crypto/vectors/*.json)', () => {
  const generated = generateVectors();

  it('cover exactly the eight files', () => {
    expect(Object.keys(generated).sort()).toEqual([...FILES].sort());
  });

  it.each(FILES)('%s is re-derived byte for byte from the fixed inputs', (name) => {
    const onDisk = readFileSync(`${DIR}/${name}`, 'utf8');
    const derived = renderVectorFile(generated[name]!);
    expect(JSON.parse(onDisk)).toEqual(JSON.parse(derived));
    expect(onDisk === derived).toBe(true);
  });

  it.each(FILES.filter((f) => f !== 'ratchet.json' && f !== 'sender-keys.json'))('%s: every listed case (positive and negative) has its recorded outcome', (name) => {
    const cases = checkCases(load(name));
    expect(cases.length).toBeGreaterThan(0);
    for (const c of cases) expect({ name: c.name, check: c.check, outcome: outcomeOf(s(c.check), c) }).toEqual({ name: c.name, check: c.check, outcome: c.outcome });
  });

  it('primitives: known values, tagged hashes, signatures', () => {
    const v = load('primitives.json');
    const one = new Uint8Array(32);
    one[31] = 1;
    const two = new Uint8Array(32);
    two[31] = 2;
    expect(x(ecdh(one, pub(two)))).toBe('c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5');
    expect(arr(v.ecdh)[0]!.shared).toBe('c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5');
    const parity = arr(v.ecdh)[1]!;
    for (const [sk, pk] of [['sk_a', 'pub_b'], ['sk_b', 'pub_a'], ['sk_b_negated', 'pub_a']] as const) expect(x(ecdh(h(s(parity[sk])), h(s(parity[pk]))))).toBe(parity.shared);
    for (const t of arr(v.tagged_hash)) expect(x(taggedHash(s(t.tag), h(s(t.msg))))).toBe(t.hash);
    for (const g of arr(v.sign)) {
      expect(x(sign(h(s(g.sk)), s(g.purpose), h(s(g.msg)), h(s(g.aux))))).toBe(g.sig);
      expect(verify(h(s(g.pk)), s(g.purpose), h(s(g.msg)), h(s(g.sig)))).toBe(true);
    }
    for (const k of arr(v.hkdf)) expect(x(hkdf({ salt: h(s(k.salt)), ikm: h(s(k.ikm)), info: h(s(k.info)), length: k.length as number }))).toBe(k.okm);
  });

  it('identity: account id and its text form', () => {
    const a = o(load('identity.json').account);
    expect(x(accountIdOf(pub(h(s(a.aik_sk)))))).toBe(a.account_id);
    expect(encodeAccountId(h(s(a.account_id)))).toBe(a.text);
    expect(x(decodeAccountId(s(a.text)))).toBe(a.account_id);
  });

  it('pqxdh: ML-KEM from d‖z and m, the HKDF split, and the responder side', () => {
    const cases = arr(load('pqxdh.json').cases);
    expect(cases).toHaveLength(5);
    for (const c of cases) {
      const kem = o(c.kem);
      const kp = ml_kem1024.keygen(h(s(kem.seed_d_z)));
      expect(x(kp.publicKey)).toBe(kem.public_key);
      const enc = ml_kem1024.encapsulate(kp.publicKey, h(s(kem.m)));
      expect([x(enc.cipherText), x(enc.sharedSecret)]).toEqual([kem.ciphertext, kem.shared_secret]);
      expect(x(ml_kem1024.decapsulate(enc.cipherText, kp.secretKey))).toBe(kem.shared_secret);
      const ikm = s(c.ikm);
      expect(ikm).toBe(`${'ff'.repeat(32)}${s(c.dh1)}${s(c.dh2)}${s(c.dh3)}${c.dh4 ? s(c.dh4) : ''}${s(kem.shared_secret)}`);
      const okm = x(hkdf({ salt: new Uint8Array(32), ikm: h(ikm), info: h(s(c.info)), length: 96 }));
      expect(okm).toBe(c.okm);
      expect(s(c.rk0) + s(c.hk_a) + s(c.hk_b)).toBe(okm);
    }
  });

  describe.each([['plain_headers'], ['header_encryption']])('ratchet script (%s) replayed from the file', (variant) => {
    it('reproduces every message and every delivery outcome; rejected deliveries change nothing', () => {
      const v = o(load('ratchet.json')[variant]);
      const inp = o(v.inputs);
      const he = inp.he === true;
      const headerKeys = he ? { headerKeys: { hkA: h(s(inp.hk_a)), hkB: h(s(inp.hk_b)) } } : {};
      const now = inp.now as number;
      const states: Record<string, RatchetState> = {
        a: initInitiator({ rk0: h(s(inp.rk0)), peerSpk: h(s(inp.spk_b)), self: h(s(inp.addr_a)), peer: h(s(inp.addr_b)), baseKey: new Uint8Array(32), pendingPrekey: new Uint8Array(0), now, dhsSk: h(s(inp.alice_dhs0_sk)), ...headerKeys }),
        b: initResponder({ rk0: h(s(inp.rk0)), spkSk: h(s(inp.spk_b_sk)), self: h(s(inp.addr_b)), peer: h(s(inp.addr_a)), baseKey: new Uint8Array(32), now, ...headerKeys }),
      };
      const messages = new Map<string, Obj>();
      const outcomes: string[] = [];
      for (const step of arr(v.steps)) {
        if (step.op === 'send') {
          const from = s(step.from);
          // Filler messages between the recorded ones (skip test) are not in the file: advance the chain to N.
          while (states[from]!.ns < (step.n as number)) states[from] = ratchetEncrypt(states[from]!, new Uint8Array(0), now, { headerNonce: new Uint8Array(12) }).state;
          const r = ratchetEncrypt(states[from]!, h(s(step.plaintext)), now, he ? { headerNonce: h(s(step.header_nonce)) } : {});
          expect(x(r.message)).toBe(step.message);
          states[from] = r.state;
          messages.set(s(step.label), step);
          continue;
        }
        const to = s(step.to);
        const m = messages.get(s(step.label))!;
        const before = serializeRatchetState(states[to]!);
        const rand = step.new_dhs_sk ? { dhsSk: h(s(step.new_dhs_sk)) } : {};
        let outcome = 'ok';
        try {
          const r = ratchetDecrypt(states[to]!, h(s(m.message)), now, rand);
          expect(x(r.content)).toBe(m.plaintext);
          if (step.committed) states[to] = r.state;
        } catch (err) {
          if (!(err instanceof CryptoError)) throw err;
          outcome = err.code;
        }
        expect({ label: step.label, outcome }).toEqual({ label: step.label, outcome: step.outcome });
        if (!step.committed) expect(serializeRatchetState(states[to]!)).toBe(before);
        outcomes.push(`${s(step.label)}:${outcome}`);
      }
      expect(outcomes).toEqual(expect.arrayContaining(['S2001:ok', 'S2002:TOO_MANY_SKIPPED', 'S1:REPLAY', 'S2001:REPLAY', 'O1:REPLAY', 'O2:ok', 'O0:ok']));
      const flags = arr(v.steps).filter((st) => st.op === 'send').map((st) => s(st.message).slice(2, 4));
      expect(new Set(flags)).toEqual(new Set([he ? '01' : '00']));
    });
  });

  it('sender keys: the receiver script from the SKDM', () => {
    const v = load('sender-keys.json');
    const inp = o(v.inputs);
    const skdm = o(v.skdm);
    expect(decodeContent(new TextEncoder().encode(s(skdm.content))).k).toBe('skdm');
    let chain: SenderChain = chainFromSkdm(skdm as Parameters<typeof chainFromSkdm>[0], 0);
    expect(x(chain.sigPk)).toBe(inp.sig_pk);
    expect(x(pub(h(s(inp.ssk))))).toBe(inp.sig_pk);
    const plain = new Map(arr(v.messages).map((m) => [m.it as number, s(m.plaintext)]));
    for (const st of arr(v.receiver_script)) {
      let content: Uint8Array | undefined;
      const outcome = cryptoOutcome(() => {
        const r = senderKeyDecrypt(chain, h(s(st.sender ?? inp.sender_addr)), parseSenderKeyMessage(h(s(st.message))));
        content = r.content;
        if (st.committed) chain = r.chain;
      });
      expect({ name: st.name, outcome }).toEqual({ name: st.name, outcome: st.outcome });
      if (outcome === 'ok') expect(x(content!)).toBe(plain.get(st.it as number));
    }
    expect(arr(v.messages).map((m) => m.it)).toEqual([0, 1, 1000, 3001]);
  });

  it('envelope/content: padding sizes and the expiry fields', () => {
    const v = load('envelope-content.json');
    expect(arr(v.padding).map((p) => [p.length, p.padded_length])).toEqual([[0, 256], [254, 256], [255, 256], [256, 512]]);
    for (const p of arr(v.padding)) {
      expect(x(pad(h(s(p.input))))).toBe(p.padded);
      expect(x(unpad(h(s(p.padded))))).toBe(p.input);
    }
    for (const c of arr(v.content)) {
      const content = decodeContent(h(s(c.content)));
      expect(envelopeExpiry(content)).toEqual({ expiresAt: c.expires_at, readTtlS: c.read_ttl_s });
      if (c.read_at !== undefined) expect(expiryAfterRead(c.expires_at as number, c.read_ttl_s as number, c.read_at as number)).toBe(c.expires_at_after_read);
      expect(x(unpad(h(s(c.padded))))).toBe(c.content);
    }
    const read = arr(v.content).find((c) => o(JSON.parse(s(c.content_json)) as Json).exp && (c.read_ttl_s as number) === 30)!;
    expect(read.expires_at).toBe((read.read_at as number) - 10_000 + 30_000 + 2_592_000_000);
    expect(read.expires_at_after_read).toBe((read.read_at as number) + 30_000);
  });

  it('kt-merkle: the published root of the eight CT leaves (PROTOCOL.md §14), and every proof in the file', () => {
    const v = load('kt-merkle.json');
    const roots = v.roots as string[];
    expect(roots[8]).toBe('5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328');
    expect(roots[0]).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(arr(v.inclusion)).toHaveLength(36);
    expect(arr(v.consistency)).toHaveLength(36);
    expect(arr(v.negatives).length).toBeGreaterThanOrEqual(10);
  });

  it('safety numbers: digits and QR from both sides', () => {
    const v = load('safety-numbers.json');
    const ab = safetyNumber(h(s(v.aik_a)), h(s(v.aik_b)));
    const ba = safetyNumber(h(s(v.aik_b)), h(s(v.aik_a)));
    expect([ab.digits, ab.qr, ba.qr]).toEqual([v.digits, v.qr_a, v.qr_b]);
    expect(ab.groups).toEqual(v.groups);
    expect(ab.qr).toBe(`umbra-sn:1:${Buffer.from(h(`0001${s(v.h_a).slice(0, 64)}${s(v.h_b).slice(0, 64)}`)).toString('base64url')}`);
    expect(s(v.digits)).toMatch(/^\d{60}$/);
  });
});

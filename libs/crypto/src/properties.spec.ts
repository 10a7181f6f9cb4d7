import fc from 'fast-check';
import { CryptoError } from './errors';
import { ratchetDecrypt, ratchetEncrypt, serializeRatchetState, type RatchetState } from './session/ratchet';
import { establishedPair, testDevice } from './testing/fixtures';

const RUNS = process.env.UMBRA_HEAVY === '1' ? 200 : 25;
const te = new TextEncoder();
const td = new TextDecoder();

interface InFlight {
  from: number;
  to: number;
  text: string;
  wire: Uint8Array;
  delivered: boolean;
}

/**
 * Three devices with pairwise sessions. Random actions: any device sends to any other; any message
 * in flight is delivered (in any order), delivered again (duplicate), or never (loss). Everything
 * that arrives the first time decrypts to what was sent; every duplicate is rejected with a
 * CryptoError and leaves the session unchanged.
 */
describe('ratchet sessions under loss, duplication and reordering (fast-check)', () => {
  const devices = [testDevice(), testDevice(), testDevice()];

  it('decrypts what arrives once and rejects replays', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ kind: fc.constant('send' as const), from: fc.nat(2), to: fc.nat(2) }),
            fc.record({ kind: fc.constant('deliver' as const), pick: fc.nat(10_000) }),
          ),
          { minLength: 1, maxLength: 60 },
        ),
        (actions) => {
          const state = new Map<string, RatchetState>();
          for (let i = 0; i < 3; i++) {
            for (let j = i + 1; j < 3; j++) {
              const p = establishedPair(devices[i]!, devices[j]!);
              state.set(`${i}>${j}`, p.a);
              state.set(`${j}>${i}`, p.b);
            }
          }
          const flight: InFlight[] = [];
          let n = 0;
          for (const act of actions) {
            if (act.kind === 'send') {
              if (act.from === act.to) continue;
              const key = `${act.from}>${act.to}`;
              const text = `m${n++}`;
              const r = ratchetEncrypt(state.get(key)!, te.encode(text), Date.now());
              state.set(key, r.state);
              flight.push({ from: act.from, to: act.to, text, wire: r.message, delivered: false });
            } else if (flight.length > 0) {
              const m = flight[act.pick % flight.length]!;
              const key = `${m.to}>${m.from}`;
              const before = serializeRatchetState(state.get(key)!);
              if (!m.delivered) {
                const r = ratchetDecrypt(state.get(key)!, m.wire, Date.now());
                if (td.decode(r.content) !== m.text) return false;
                state.set(key, r.state);
                m.delivered = true;
              } else {
                let rejected = false;
                try {
                  ratchetDecrypt(state.get(key)!, m.wire, Date.now());
                } catch (err) {
                  rejected = err instanceof CryptoError;
                }
                if (!rejected || serializeRatchetState(state.get(key)!) !== before) return false;
              }
            }
          }
          return true;
        },
      ),
      { numRuns: RUNS },
    );
  });
});

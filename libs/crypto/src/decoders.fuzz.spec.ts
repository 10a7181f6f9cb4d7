import fc from 'fast-check';
import { Session } from 'node:inspector/promises';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * Coverage-guided fuzzing of every decoder (libs/crypto/src/testing/fuzz-corpus.ts lists them): fast-check
 * generates mutation plans (bit flips, interesting bytes and lengths, truncations, extensions, splices) over
 * a corpus seeded from the §14 vectors (libs/crypto/fuzz-corpus/, committed); V8's block coverage of
 * libs/crypto/src decides which mutants join the corpus, as a coverage-guided fuzzer would. The only error
 * any decoder may throw is CryptoError; no input may take longer than HANG_MS.
 * Budget: UMBRA_FUZZ_RUNS per decoder (default 200, 1000 under UMBRA_HEAVY=1 — about 2½ minutes on 2 cores; 4000 took 10). Replay: UMBRA_FUZZ_SEED.
 * Regenerate the corpus after the vectors change: UMBRA_WRITE_FUZZ_CORPUS=1 with this spec.
 */
const CORPUS_DIR = resolve(process.cwd(), 'libs/crypto/fuzz-corpus');
const VECTORS_DIR = resolve(process.cwd(), 'libs/crypto/vectors');
const HEAVY = process.env.UMBRA_HEAVY === '1';
const RUNS = Number(process.env.UMBRA_FUZZ_RUNS ?? (HEAVY ? 1000 : 200));
const SEED = Number(process.env.UMBRA_FUZZ_SEED ?? 0xf022);
const MAX_INPUT_BYTES = 64 * 1024;
const HANG_MS = 2000;

function loadVectors(): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const f of readdirSync(VECTORS_DIR).filter((n) => n.endsWith('.json')).sort()) out[f.replace(/\.json$/, '')] = JSON.parse(readFileSync(join(VECTORS_DIR, f), 'utf8')) as Record<string, unknown>;
  return out;
}


function corpusFile(name: string): string {
  return join(CORPUS_DIR, `${name}.txt`);
}

function committed(name: string): string[] {
  return readFileSync(corpusFile(name), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as string);
}

/** V8 block coverage of libs/crypto/src: every (script, block) ever executed. */
class Coverage {
  private readonly session = new Session();
  private readonly seen = new Set<string>();

  async start(): Promise<void> {
    this.session.connect();
    await this.session.post('Profiler.enable');
    await this.session.post('Profiler.startPreciseCoverage', { callCount: true, detailed: true });
  }

  /** Blocks executed since the last call that had never run before. */
  async newBlocks(): Promise<number> {
    const { result } = await this.session.post('Profiler.takePreciseCoverage');
    let added = 0;
    for (const script of result) {
      if (!script.url.includes('libs/crypto/src/') || script.url.includes('.spec.') || script.url.includes('/testing/')) continue;
      for (const fn of script.functions) {
        for (const r of fn.ranges) {
          if (r.count === 0) continue;
          const key = `${script.scriptId}:${r.startOffset}:${r.endOffset}`;
          if (!this.seen.has(key)) {
            this.seen.add(key);
            added++;
          }
        }
      }
    }
    return added;
  }

  get size(): number {
    return this.seen.size;
  }

  async stop(): Promise<void> {
    await this.session.post('Profiler.stopPreciseCoverage');
    this.session.disconnect();
  }
}

const INTERESTING = [0x00, 0x01, 0x02, 0x7f, 0x80, 0xfe, 0xff];
type Op =
  | { k: 'flip'; at: number; bit: number }
  | { k: 'set'; at: number; v: number }
  | { k: 'u32'; at: number; v: number }
  | { k: 'truncate'; at: number }
  | { k: 'extend'; bytes: Uint8Array }
  | { k: 'insert'; at: number; bytes: Uint8Array }
  | { k: 'delete'; at: number; n: number }
  | { k: 'splice'; other: number; at: number; from: number }
  | { k: 'dup'; at: number; n: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ k: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ k: fc.constant('set' as const), at: fc.nat(), v: fc.oneof(fc.constantFrom(...INTERESTING), fc.nat(255)) }),
  fc.record({ k: fc.constant('u32' as const), at: fc.nat(), v: fc.constantFrom(0, 1, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, 0xffff, 0x1_0000, 64, 65, 1024) }),
  fc.record({ k: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ k: fc.constant('extend' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
  fc.record({ k: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ k: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ k: fc.constant('splice' as const), other: fc.nat(), at: fc.nat(), from: fc.nat() }),
  fc.record({ k: fc.constant('dup' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 64 }) }),
);

function mutate(input: Uint8Array, ops: Op[], corpus: Uint8Array[]): Uint8Array {
  let b: Uint8Array = Uint8Array.from(input);
  for (const op of ops) {
    const at = b.length ? op.k === 'extend' ? 0 : (op as { at: number }).at % (b.length + 1) : 0;
    const i = b.length ? at % b.length : 0;
    switch (op.k) {
      case 'flip': if (b.length) b[i] = b[i]! ^ (1 << op.bit); break;
      case 'set': if (b.length) b[i] = op.v; break;
      case 'u32': if (b.length >= 4) new DataView(b.buffer, b.byteOffset).setUint32(Math.min(i, b.length - 4), op.v); break;
      case 'truncate': b = b.slice(0, at); break;
      case 'extend': b = concat(b, op.bytes); break;
      case 'insert': b = concat(b.slice(0, at), op.bytes, b.slice(at)); break;
      case 'delete': b = concat(b.slice(0, at), b.slice(at + op.n)); break;
      case 'splice': {
        const other = corpus[op.other % corpus.length]!;
        b = concat(b.slice(0, at), other.slice(other.length ? op.from % other.length : 0));
        break;
      }
      case 'dup': b = concat(b.slice(0, at), b.slice(at, at + op.n), b.slice(at)); break;
    }
  }
  return b.length > MAX_INPUT_BYTES ? b.slice(0, MAX_INPUT_BYTES) : b;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const utf8 = new TextEncoder();
const latin = new TextDecoder('utf-8');

/** Runs one input; anything but a CryptoError, or a slow decode, fails the property. */
function runOne(name: string, f: (x: never) => unknown, input: unknown, show: string): void {
  const started = performance.now();
  try {
    f(input as never);
  } catch (err) {
    if (!(err instanceof CryptoError)) throw new Error(`${name} threw ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)} on ${show}`);
  }
  const ms = performance.now() - started;
  if (ms > HANG_MS) throw new Error(`${name} took ${ms.toFixed(0)} ms on ${show}`);
}

// Block coverage only instruments code compiled after it starts, so the library is imported after.
const coverage = new Coverage();
await coverage.start();
const { CryptoError } = await import('./errors');
const { hexDecode } = await import('./bytes');
const { buildFuzzCorpus, byteDecoders, fuzzContext, stringDecoders } = await import('./testing/fuzz-corpus');

const vectors = loadVectors();
const ctx = fuzzContext(vectors);
const generated = buildFuzzCorpus(vectors);
if (process.env.UMBRA_WRITE_FUZZ_CORPUS === '1') {
  for (const [name, seeds] of Object.entries(generated)) writeFileSync(corpusFile(name), seeds.map((s) => JSON.stringify(s)).join('\n') + '\n');
}
const stats: string[] = [];

afterAll(async () => {
  await coverage.stop();
  process.stdout.write(`decoder fuzz, seed ${SEED}, ${RUNS} runs each, ${coverage.size} blocks of libs/crypto covered\n${stats.join('\n')}\n`);
});

describe('decoder fuzz: only CryptoError, never a hang', () => {
  const bytesDecoders = byteDecoders(ctx);
  const textDecoders = stringDecoders(ctx);

  it('has a committed seed corpus for every decoder, current with the vectors', () => {
    expect(Object.keys(generated).sort()).toEqual([...Object.keys(bytesDecoders), ...Object.keys(textDecoders)].sort());
    for (const name of Object.keys(generated)) {
      expect({ name, seeds: committed(name) }).toEqual({ name, seeds: generated[name] });
    }
  });

  it.each(Object.keys(bytesDecoders))('%s', async (name) => {
    const f = bytesDecoders[name]!;
    const seeds = committed(name).map(hexDecode);
    const corpus = seeds.length ? [...seeds] : [new Uint8Array(0)];
    for (const s of corpus) runOne(name, f, s, `seed ${Buffer.from(s).toString('hex').slice(0, 80)}`);
    await coverage.newBlocks();
    let added = 0;
    const out = await fc.check(
      fc.asyncProperty(fc.nat(), fc.array(opArb, { minLength: 1, maxLength: 6 }), async (pick, ops) => {
        const input = mutate(corpus[pick % corpus.length]!, ops, corpus);
        runOne(name, f, input, `input ${Buffer.from(input).toString('hex').slice(0, 400)}`);
        if ((await coverage.newBlocks()) > 0 && corpus.length < 500) {
          corpus.push(input);
          added++;
        }
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
    stats.push(`${name}: ${seeds.length} seeds, +${added} by coverage`);
    if (out.failed) throw new Error(`seed ${out.seed}: ${out.errorInstance instanceof Error ? out.errorInstance.message : String(out.errorInstance)}`);
  });

  it.each(Object.keys(textDecoders))('%s', async (name) => {
    const f = textDecoders[name]!;
    const seeds = committed(name);
    const corpus = (seeds.length ? seeds : ['']).map((s) => utf8.encode(s));
    await coverage.newBlocks();
    let added = 0;
    const extra = fc.constantFrom('', '\u0000', '\ud800', '💥', '{"v":1}', '[]', 'null', '1e999', '"', '=', '%', ' ');
    const out = await fc.check(
      fc.asyncProperty(fc.nat(), fc.array(opArb, { minLength: 1, maxLength: 6 }), extra, fc.boolean(), async (pick, ops, tail, addTail) => {
        const text = latin.decode(mutate(corpus[pick % corpus.length]!, ops, corpus)) + (addTail ? tail : '');
        runOne(name, f, text, `input ${JSON.stringify(text.slice(0, 300))}`);
        if ((await coverage.newBlocks()) > 0 && corpus.length < 500) {
          corpus.push(utf8.encode(text));
          added++;
        }
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
    stats.push(`${name}: ${seeds.length} seeds, +${added} by coverage`);
    if (out.failed) throw new Error(`seed ${out.seed}: ${out.errorInstance instanceof Error ? out.errorInstance.message : String(out.errorInstance)}`);
  });
});

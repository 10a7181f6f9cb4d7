import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { renderLimitsTable, replaceLimitsBlock } from './security-doc';

const DOC = resolve(process.cwd(), 'docs/security.md');

describe('docs/security.md and SECURITY.md', () => {
  it('lists every limit with its current default (UMBRA_WRITE_DOCS=1 regenerates the table)', () => {
    const doc = readFileSync(DOC, 'utf8');
    const table = renderLimitsTable();
    if (process.env.UMBRA_WRITE_DOCS === '1') writeFileSync(DOC, replaceLimitsBlock(doc, table));
    expect(replaceLimitsBlock(readFileSync(DOC, 'utf8'), table)).toBe(readFileSync(DOC, 'utf8'));
  });

  it('links every test suite it describes, and the files exist', () => {
    const doc = readFileSync(DOC, 'utf8');
    const links = [...doc.matchAll(/\]\(\.\.\/([^)#]+)\)/g)].map((m) => m[1]!);
    for (const must of ['test/hostile/hostile-input.e2e.test.ts', 'test/authz-matrix.e2e.test.ts', 'libs/crypto/src/decoders.fuzz.spec.ts', 'SECURITY.md']) expect(links).toContain(must);
    for (const l of links) expect({ link: l, exists: existsSync(resolve(process.cwd(), l)) }).toEqual({ link: l, exists: true });
  });

  it('SECURITY.md says how to report and points at docs/security.md', () => {
    const s = readFileSync(resolve(process.cwd(), 'SECURITY.md'), 'utf8');
    expect(s).toMatch(/security advisor/i);
    expect(s).toContain('docs/security.md');
  });
});

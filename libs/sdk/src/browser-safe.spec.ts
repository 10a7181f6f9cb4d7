import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** Every module the main entry reaches through relative imports, with its static imports. */
function reachable(entry: string): Map<string, string[]> {
  const seen = new Map<string, string[]>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    const source = readFileSync(file, 'utf8');
    const specifiers = [...source.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+'([^']+)'/gm)].map((m) => m[1]!);
    seen.set(file, specifiers);
    for (const s of specifiers) {
      if (!s.startsWith('.')) continue;
      const target = path.resolve(path.dirname(file), s.replace(/\.js$/, ''));
      visit(existsSync(`${target}.ts`) ? `${target}.ts` : path.join(target, 'index.ts'));
    }
  };
  visit(entry);
  return seen;
}

describe('@umbra/sdk main entry', () => {
  it('imports no Node-only module statically, so it can run in a browser (Node-only parts live in @umbra/sdk/node)', () => {
    const graph = reachable(path.join(process.cwd(), 'libs/sdk/src/index.ts'));
    expect(graph.size).toBeGreaterThan(5);
    const nodeOnly = [...graph].flatMap(([file, specs]) => specs.filter((s) => s.startsWith('node:') || ['fs', 'http', 'https', 'path', 'crypto', 'stream'].includes(s)).map((s) => `${path.basename(file)} → ${s}`));
    expect(nodeOnly).toEqual([]);
    const nodeEntry = reachable(path.join(process.cwd(), 'libs/sdk/src/node.ts'));
    expect([...nodeEntry.values()].flat().some((s) => s.startsWith('node:'))).toBe(true);
  });
});

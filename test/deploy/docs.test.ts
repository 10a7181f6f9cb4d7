import { readFileSync, writeFileSync } from 'node:fs';
import { ENV_SCHEMA } from '@umbra/server';
import { LAUNCHER_ENV_SCHEMA, launcherEnvTable, portsTable } from '../../scripts/lib/launcher-config';
import { appMetrics, envTable, generatedBlock, knownSeries, metricsTable, undocumentedEnv, withGeneratedBlock } from './reference';
import { repoPath } from './support';

const DOC = repoPath('docs', 'operations.md');

if (process.env.UMBRA_WRITE_DOCS === '1') {
  let doc = readFileSync(DOC, 'utf8');
  doc = withGeneratedBlock(doc, 'env', envTable());
  doc = withGeneratedBlock(doc, 'metrics', metricsTable());
  doc = withGeneratedBlock(doc, 'ports', portsTable());
  doc = withGeneratedBlock(doc, 'launcher-env', launcherEnvTable());
  writeFileSync(DOC, doc);
}

const doc = readFileSync(DOC, 'utf8');
const known = knownSeries();
const metricNames = (text: string) => [...new Set(text.match(/\bumbra_[a-z0-9_]+/g) ?? [])];

/** Balanced (), {} and [] outside string literals: a cheap PromQL syntax guard. */
function balanced(expr: string): boolean {
  const stack: string[] = [];
  const pairs: Record<string, string> = { ')': '(', '}': '{', ']': '[' };
  let quote: string | undefined;
  for (const ch of expr) {
    if (quote) {
      if (ch === quote) quote = undefined;
      continue;
    }
    if (ch === '"' || ch === "'") quote = ch;
    else if ('({['.includes(ch)) stack.push(ch);
    else if (ch in pairs && stack.pop() !== pairs[ch]) return false;
  }
  return stack.length === 0 && quote === undefined;
}

describe('docs/operations.md', () => {
  const hint = 'regenerate with: UMBRA_WRITE_DOCS=1 node --experimental-vm-modules node_modules/jest/bin/jest.js test/deploy/docs --selectProjects integration';

  it('documents every ENV_SCHEMA variable (default and the services that read it) in the generated table', () => {
    expect(undocumentedEnv()).toEqual([]);
    expect(`${generatedBlock(doc, 'env')}\n(${hint})`).toBe(`${envTable()}\n(${hint})`);
    for (const key of Object.keys(ENV_SCHEMA.shape)) expect(doc).toContain(`| \`${key}\` |`);
  });

  it('lists every port in one table generated from the launcher schema and DEFAULT_PORTS, and every launcher variable', () => {
    expect(`${generatedBlock(doc, 'ports')}\n(${hint})`).toBe(`${portsTable()}\n(${hint})`);
    expect(`${generatedBlock(doc, 'launcher-env')}\n(${hint})`).toBe(`${launcherEnvTable()}\n(${hint})`);
    for (const key of Object.keys(LAUNCHER_ENV_SCHEMA.shape)) expect(doc).toContain(`| \`${key}\` |`);
    expect(generatedBlock(doc, 'ports')).toMatch(/\| 3000–3007 \|.*\| 9000 \|/s);
  });

  it('lists every metric of metrics.ts in the generated table, and every one of them in the alerts section', () => {
    expect(`${generatedBlock(doc, 'metrics')}\n(${hint})`).toBe(`${metricsTable()}\n(${hint})`);
    const alerts = doc.slice(doc.indexOf('<!-- /generated:metrics -->'));
    for (const m of appMetrics()) expect(`${m.name} mentioned=${alerts.includes(m.name)}`).toBe(`${m.name} mentioned=true`);
  });

  it('names only metrics that exist, in well-formed PromQL', () => {
    for (const name of metricNames(doc)) expect(`${name} known=${known.has(name)}`).toBe(`${name} known=true`);
    const exprs = [...doc.matchAll(/^\| \w+ \| `([^`]+)` \|/gm)].map((m) => m[1]!);
    expect(exprs.length).toBeGreaterThanOrEqual(10);
    for (const e of exprs) expect(`${e} balanced=${balanced(e)}`).toMatch(/balanced=true$/);
  });

  it('covers scaling, backup and restore, rotation and upgrades, and points to the measured numbers', () => {
    for (const heading of ['## Configuration reference', '## Scaling', '### Measured numbers', '## Backup and restore', '## Key and credential rotation', '## Upgrades and migrations', '## Metrics and alerts']) {
      expect(doc).toContain(heading);
    }
    for (const word of ['pg_dump', 'pg_basebackup', 'Redis needs no backup', 'benchmarks.md', 'forward-only', 'TURN secret', 'S3 credentials', 'bearer tokens']) expect(doc).toContain(word);
  });
});

describe('docs/grafana-dashboard.json', () => {
  interface Target {
    expr: string;
    refId: string;
  }
  interface Panel {
    id: number;
    type: string;
    title: string;
    gridPos: { h: number; w: number; x: number; y: number };
    datasource?: { type: string; uid: string };
    targets?: Target[];
  }
  const dashboard = JSON.parse(readFileSync(repoPath('docs', 'grafana-dashboard.json'), 'utf8')) as {
    uid: string;
    title: string;
    schemaVersion: number;
    panels: Panel[];
    templating: { list: { name: string; type: string }[] };
  };
  const panels = dashboard.panels.filter((p) => p.type !== 'row');

  it('is a Grafana dashboard with a Prometheus data source variable', () => {
    expect(dashboard.uid).toMatch(/^[a-z0-9-]{1,40}$/);
    expect(dashboard.title).toBe('Umbra');
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.templating.list.find((v) => v.name === 'datasource')?.type).toBe('datasource');
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of dashboard.panels) {
      expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24);
      expect(p.title.length).toBeGreaterThan(0);
    }
  });

  it('every panel queries metrics defined in metrics.ts (or their process defaults) with well-formed PromQL', () => {
    expect(panels.length).toBeGreaterThan(10);
    for (const p of panels) {
      expect(p.datasource?.uid).toBe('${datasource}');
      expect(p.targets?.length ?? 0).toBeGreaterThan(0);
      for (const t of p.targets ?? []) {
        const names = metricNames(t.expr);
        expect(`${p.title}: ${names.length}`).not.toBe(`${p.title}: 0`);
        for (const n of names) expect(`${p.title}: ${n} known=${known.has(n)}`).toMatch(/known=true$/);
        expect(`${t.expr} balanced=${balanced(t.expr)}`).toMatch(/balanced=true$/);
      }
    }
  });

  it('charts every application metric', () => {
    const used = new Set(panels.flatMap((p) => (p.targets ?? []).flatMap((t) => metricNames(t.expr))).map((n) => n.replace(/_(bucket|sum|count)$/, '')));
    for (const m of appMetrics()) expect(`${m.name} charted=${used.has(m.name)}`).toBe(`${m.name} charted=true`);
  });
});

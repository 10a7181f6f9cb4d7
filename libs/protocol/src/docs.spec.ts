import { readFileSync } from 'node:fs';
import { renderApiReference } from './docs';
import { ROUTES, buildOpenApiDocument } from './routes';
import { WS_EVENTS } from './events';
import { ERROR_CODES } from './errors';

describe('API reference', () => {
  it('docs/api.md is generated from the current definitions (run `npm run docs:api`)', () => {
    expect(readFileSync(`${process.cwd()}/docs/api.md`, 'utf8')).toBe(renderApiReference());
  });

  it('documents every route, WebSocket event and error code', () => {
    const doc = renderApiReference();
    for (const r of Object.values(ROUTES)) expect(doc).toContain(`${r.method.toUpperCase()} ${r.path}`);
    for (const e of WS_EVENTS) expect(doc).toContain(`### \`${e.name}\``);
    for (const c of ERROR_CODES) expect(doc).toContain(`\`${c}\``);
  });

  it('builds an OpenAPI 3.1 document with every route and its error codes', () => {
    const doc = buildOpenApiDocument('http://127.0.0.1:8080') as { paths: Record<string, Record<string, { operationId: string; responses: Record<string, unknown> }>> };
    for (const [id, r] of Object.entries(ROUTES)) {
      const op = doc.paths[r.path]?.[r.method];
      expect(op?.operationId).toBe(id);
      expect(Object.keys(op!.responses)).toContain(String(r.status));
    }
  });
});

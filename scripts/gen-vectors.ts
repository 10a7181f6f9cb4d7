/**
 * Writes the PROTOCOL.md §14 test vectors (items 1–6, 9) to libs/crypto/vectors/*.json.
 * `npm run vectors:gen`; the unit spec libs/crypto/src/testing/vectors.spec.ts fails until the
 * files match what the code derives, so regenerate only for an intended encoding change.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { generateVectors, renderVectorFile } from '@umbra/crypto/dist/testing/vectors.js';

const dir = path.resolve(__dirname, '..', '..', 'libs', 'crypto', 'vectors');
mkdirSync(dir, { recursive: true });
for (const [name, content] of Object.entries(generateVectors())) {
  writeFileSync(path.join(dir, name), renderVectorFile(content));
  process.stdout.write(`wrote ${path.join(dir, name)}\n`);
}

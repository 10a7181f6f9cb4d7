import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { renderApiReference } from '@umbra/protocol';

const target = path.resolve(__dirname, '..', '..', 'docs', 'api.md');
writeFileSync(target, renderApiReference());
process.stdout.write(`wrote ${target}\n`);

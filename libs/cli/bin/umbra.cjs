#!/usr/bin/env node
// The `umbra` command. Committed (not build output) so that `npm install` links it on a fresh
// clone; it runs the compiled CLI, or says what to run when that is not built yet.
'use strict';
const { existsSync } = require('node:fs');
const path = require('node:path');

// Each command is a new process: V8's compiled code, cached on disk across runs, saves most of the
// compile time of the SDK's modules (Node's own cache directory under the OS temp dir).
require('node:module').enableCompileCache?.();

const entry = path.join(__dirname, '..', 'dist', 'umbra.js');
const root = path.resolve(__dirname, '..', '..', '..');
if (!existsSync(entry)) {
  process.stderr.write(`umbra: the CLI is not built yet: run \`npm run build\` (or \`npm start\`) in ${root}, then try again\n`);
  process.exit(1);
}
try {
  require(entry);
} catch (err) {
  if (err && err.code === 'MODULE_NOT_FOUND') {
    process.stderr.write(`umbra: the build is incomplete (${err.message.split('\n')[0]}): run \`npm run build\` in ${root}, then try again\n`);
    process.exit(1);
  }
  throw err;
}

#!/usr/bin/env bash
# The whole test suite: type-check, unit tests, integration and end-to-end tests against the local
# Postgres (127.0.0.1:5432) and Redis (127.0.0.1:6379). UMBRA_HEAVY=1 adds the heavier suites.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "error: $*" >&2; exit 1; }
node -e "require('pg')" 2>/dev/null || fail "dependencies missing: run 'npm install' first"
node -e "
const net = require('net');
const check = (port, name) => new Promise((ok, ko) => { const s = net.connect(port, '127.0.0.1', () => { s.end(); ok(); }); s.on('error', () => ko(new Error(name + ' is not reachable on 127.0.0.1:' + port))); });
Promise.all([check(5432, 'PostgreSQL'), check(6379, 'Redis')]).catch((e) => { console.error('error: ' + e.message + ' (see README: Running the tests)'); process.exit(1); });
"

echo "== type-check"
npx tsc -b tsconfig.build.json
npx tsc -p tsconfig.spec.json --noEmit

out=$(mktemp -d)
jest() { node --experimental-vm-modules --no-warnings node_modules/jest/bin/jest.js "$@"; }

echo "== unit tests"
jest --selectProjects unit --json --outputFile="$out/unit.json"
echo "== integration and end-to-end tests"
jest --selectProjects integration --runInBand --json --outputFile="$out/integration.json"
if [ "${UMBRA_HEAVY:-0}" = "1" ]; then
  echo "== heavy suites"
  UMBRA_HEAVY=1 jest --selectProjects heavy --runInBand --passWithNoTests --json --outputFile="$out/heavy.json"
fi

node -e "
const fs = require('fs');
let passed = 0, failed = 0, skipped = 0;
for (const f of fs.readdirSync('$out')) { const r = JSON.parse(fs.readFileSync('$out/' + f, 'utf8')); passed += r.numPassedTests; failed += r.numFailedTests; skipped += r.numPendingTests; }
console.log('tests: ' + passed + ' passed, ' + failed + ' failed, ' + skipped + ' skipped');
if (passed === 0 || failed > 0) process.exit(1);
"

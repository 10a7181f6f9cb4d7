#!/usr/bin/env bash
# The whole test suite: type-check, unit tests, integration and end-to-end tests against PostgreSQL
# and Redis: TEST_DATABASE_URL / TEST_REDIS_URL (default 127.0.0.1:5432 / 6379), or private ones
# started for this run when none answers (scripts/with-databases.ts; README "Test it").
# UMBRA_HEAVY=1 adds the heavier suites; UMBRA_TEST_PRIVATE=1 uses private databases even when
# the configured ones answer.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "error: $*" >&2; exit 1; }
node -e "require('pg')" 2>/dev/null || fail "dependencies missing: run 'npm install' first (README: Test it)"

if [ -z "${UMBRA_TEST_DATABASES:-}" ]; then
  echo "== type-check"
  npx tsc -b tsconfig.build.json
  npx tsc -p tsconfig.spec.json --noEmit
  UMBRA_TEST_DATABASES=1 exec node dist/scripts/with-databases.js ${UMBRA_TEST_PRIVATE:+--private} -- bash "$0" "$@"
fi
echo "== databases: $TEST_DATABASE_URL, $TEST_REDIS_URL"

out=$(mktemp -d)
# --forceExit: a suite that leaves a handle open (a child process a failed test could not stop) must
# fail on its own assertions, not hang CI until its wall-clock limit.
jest() { node --experimental-vm-modules --no-warnings node_modules/jest/bin/jest.js --forceExit "$@"; }

echo "== unit tests"
jest --selectProjects unit --json --outputFile="$out/unit.json"
echo "== decoder fuzz"
jest --selectProjects fuzz --json --outputFile="$out/fuzz.json"
echo "== integration and end-to-end tests"
jest --selectProjects integration --runInBand --json --outputFile="$out/integration.json"
if [ "${UMBRA_HEAVY:-0}" = "1" ]; then
  echo "== heavy suites"
  UMBRA_HEAVY=1 jest --selectProjects heavy --runInBand --passWithNoTests --json --outputFile="$out/heavy.json"
  # The suites above used the configured databases; a fresh machine has none running, so run a
  # representative subset (delivery and accounts end to end) once more on private, empty instances.
  echo "== delivery and accounts end to end on private PostgreSQL and Redis"
  node dist/scripts/with-databases.js --private -- node --experimental-vm-modules --no-warnings node_modules/jest/bin/jest.js --forceExit \
    test/delivery.e2e.test.ts test/accounts.e2e.test.ts --selectProjects integration --runInBand --json --outputFile="$out/private.json"
fi

node -e "
const fs = require('fs');
let passed = 0, failed = 0, skipped = 0;
for (const f of fs.readdirSync('$out')) { const r = JSON.parse(fs.readFileSync('$out/' + f, 'utf8')); passed += r.numPassedTests; failed += r.numFailedTests; skipped += r.numPendingTests; }
console.log('tests: ' + passed + ' passed, ' + failed + ' failed, ' + skipped + ' skipped');
if (passed === 0 || failed > 0) process.exit(1);
"

#!/usr/bin/env bash
# Two identities talking end to end through the running stack (start it first with `npm start`).
set -euo pipefail
cd "$(dirname "$0")/.."
SERVER=${UMBRA_SERVER:-http://127.0.0.1:8080}
[ -f libs/cli/dist/umbra.js ] || npm run build
umbra() { node libs/cli/bin/umbra.cjs --server "$SERVER" --timeout 10 "$@"; }
A=$(mktemp -d) B=$(mktemp -d)
LISTENER=
trap '[ -n "$LISTENER" ] && kill $LISTENER 2>/dev/null; rm -rf "$A" "$B"' EXIT

echo "== alice: init and register"
ALICE=$(umbra --home "$A" init)
umbra --home "$A" register
echo "== bob: init and register"
BOB=$(umbra --home "$B" init)
umbra --home "$B" register
echo "== bob listens"
node libs/cli/bin/umbra.cjs --server "$SERVER" --home "$B" listen > "$B/inbox" 2> "$B/listen.log" &
LISTENER=$!
for _ in $(seq 1 100); do grep -q 'listening as' "$B/listen.log" 2>/dev/null && break; kill -0 $LISTENER 2>/dev/null || { cat "$B/listen.log" >&2; exit 1; }; sleep 0.2; done
echo "== alice sends"
umbra --home "$A" send "$BOB" "hello bob, this is end-to-end encrypted"
for _ in $(seq 1 50); do [ -s "$B/inbox" ] && break; sleep 0.2; done
echo "== bob received:"
cat "$B/inbox"
echo "== safety number, as alice and as bob see it"
umbra --home "$A" safety-number "$BOB"
umbra --home "$B" safety-number "$ALICE"

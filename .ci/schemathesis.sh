#!/usr/bin/env bash
# Schemathesis (from PyPI) against a Bursar this script starts on SQLite: every check, as a
# member, as an admin and as a merchant, a bounded number of examples per operation, a fixed seed so a
# failure reproduces. Any failure fails CI. Allowances for rules the document cannot state are
# in .ci/schemathesis.toml, each with its reason.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${TMPDIR:-/tmp}/bursar-schemathesis-4.32.5"
if [ ! -x "$VENV/bin/st" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet 'schemathesis==4.32.5'
fi

cargo build --quiet -p bursar
BURSAR="${CARGO_TARGET_DIR:-target}/debug/bursar"
WORK="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export DATABASE_URL="sqlite://$WORK/bursar.db" BURSAR_ADDR="127.0.0.1:$PORT" RUST_LOG=warn
BASE="http://127.0.0.1:$PORT"

"$BURSAR" admin create --email admin@example.com --password 'schemathesis admin'
"$BURSAR" serve >"$WORK/serve.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 60); do
  curl -sf "$BASE/ready" >/dev/null && break
  sleep 0.5
done

token() { # path, JSON body
  curl -sf -X POST "$BASE$1" -H 'content-type: application/json' -d "$2" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}
MEMBER="$(token /api/v1/auth/register '{"email": "member@example.com", "password": "schemathesis member"}')"
ADMIN="$(token /api/v1/auth/login '{"email": "admin@example.com", "password": "schemathesis admin"}')"
MERCHANT="$(token /api/v1/auth/register '{"email": "merchant@example.com", "password": "schemathesis merchant", "role": "merchant"}')"

status=0
for who in MEMBER ADMIN MERCHANT; do
  echo "schemathesis as ${who,,}"
  # Webhook endpoints are left out: the fuzzer would invent URLs anywhere, and deliveries
  # would then go to them.
  "$VENV/bin/st" --config-file .ci/schemathesis.toml run "$BASE/openapi.json" \
    --exclude-name-regex '^(POST|PATCH) /api/v1/admin/webhook-endpoints' \
    --checks all --header "Authorization: Bearer ${!who}" \
    --max-examples ${ST_EXAMPLES:-30} --workers 1 --seed ${ST_SEED:-20261203} --request-timeout 30 \
    --report-dir "$WORK/report" || status=1
done
if [ "$status" -ne 0 ]; then
  echo "schemathesis found failures; the server's log:"
  tail -n 50 "$WORK/serve.log"
fi
exit "$status"

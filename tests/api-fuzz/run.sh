#!/usr/bin/env bash
# Property-based test of the control API (issue 11 point 6): schemathesis generates
# requests (valid ones, and malformed JSON, wrong types, odd strings, missing fields)
# from the OpenAPI document a live daemon serves at /api/openapi.json, sends them with
# the bearer token, and fails on any 5xx, any status or media type the document does not
# list for the operation, any JSON body that does not match its schema, and any owner
# route that answers without credentials. The run must generate at least 1,000
# requests, and the daemon must neither panic nor die.
#
# The two endless event streams (/api/events, /api/events/live) take no input and are
# left out: a generated request would only wait for its timeout. (For the same reason
# POST /api/fetch's body carries no example of a valid CID: a fetch of a CID nobody
# provides streams progress until its own timeout.)
#
# Usage: tests/api-fuzz/run.sh [MIN_REQUESTS]   (scripts/test runs it)
set -euo pipefail
cd "$(dirname "$0")/../.."
min_requests=${1:-1000}

if ! command -v st >/dev/null 2>&1; then
  python3 -m pip install --quiet 'schemathesis==4.32.5'
fi
cargo build --quiet -p p2pd --features test-faults
bin=target/debug/p2pd

work=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

"$bin" --data-dir "$work/data" daemon --listen /ip4/127.0.0.1/tcp/0 --api 127.0.0.1:0 \
  --no-upnp --no-mdns 2>"$work/daemon.log" &
pid=$!
for _ in $(seq 300); do
  [ -s "$work/data/api.json" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/daemon.log"; echo "error: the daemon exited" >&2; exit 1; }
  sleep 0.1
done
[ -s "$work/data/api.json" ] || { echo "error: the daemon's API did not come up in 30 s" >&2; exit 1; }
read -r addr token < <(python3 -c 'import json,sys; e=json.load(open(sys.argv[1])); print(e["addr"], e["token"])' "$work/data/api.json")

status=0
# From the temporary directory: schemathesis keeps a cache in its working directory.
(cd "$work" && timeout 900 st run "http://$addr/api/openapi.json" \
  --header "Authorization: Bearer $token" \
  --exclude-path /api/events --exclude-path /api/events/live \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,ignored_auth \
  --max-examples 60 --request-timeout 30 --workers 2 \
  --generation-database none --no-color \
  --report junit --report-dir "$work/report") | tee "$work/st.log" || status=$?

generated=$(sed -n 's/^ *\([0-9][0-9]*\) generated.*/\1/p' "$work/st.log" | tail -1)
echo "api-fuzz: ${generated:-0} requests generated (at least $min_requests wanted), schemathesis exit $status"
if grep -q "panicked" "$work/daemon.log"; then
  grep -B2 -A10 "panicked" "$work/daemon.log" >&2
  echo "error: the daemon panicked" >&2
  exit 1
fi
kill -0 "$pid" 2>/dev/null || { echo "error: the daemon died during the run" >&2; exit 1; }
[ "$status" = 0 ] || { echo "error: schemathesis found failures (see above)" >&2; exit 1; }
[ "${generated:-0}" -ge "$min_requests" ] || { echo "error: only ${generated:-0} requests generated" >&2; exit 1; }

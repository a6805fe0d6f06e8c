#!/usr/bin/env bash
# Quickstart (1): install what is missing, build, create the demo world, start
# hegnd, send a referral from ringsted-visitation to hovmand-care, fetch it as
# hovmand-care with hegn's reference client, and show the receipt and the
# delivery log.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
DEMO=${HEGN_DEMO_DIR:-$top/demo}
PORT=${HEGN_DEMO_PORT:-8443}
BIN=$top/build

"$top/scripts/deps.sh"
echo "== building"
"$top/scripts/build.sh" "$top/build"

# A demo from an earlier run is replaced: stop its hegnd first.
if [ -f "$DEMO/run/hegnd.pid" ]; then
	kill "$(cat "$DEMO/run/hegnd.pid")" 2>/dev/null || true
	sleep 1
fi
rm -rf "$DEMO"

echo "== creating the demo world in $DEMO"
"$BIN"/hegn demo init "$DEMO" --port "$PORT"

echo "== starting hegnd"
"$BIN"/hegnd -c "$DEMO/hegn.conf" -t
"$BIN"/hegnd -c "$DEMO/hegn.conf" -D 2>>"$DEMO/run/hegnd.log"
pid=$(cat "$DEMO/run/hegnd.pid")
echo "hegnd runs as pid $pid on https://127.0.0.1:$PORT (log: $DEMO/run/hegnd.log)"
echo "stop it with: kill \$(cat $DEMO/run/hegnd.pid)"

echo "== ringsted-visitation sends a referral to hovmand-care"
answer=$("$BIN"/hegn -c "$DEMO/hegn.conf" send --as ringsted-visitation "$DEMO/examples/referral.json")
echo "$answer"
id=$(printf '%s' "$answer" | sed -n 's/.*"id": *"\([^"]*\)".*/\1/p')

echo "== hovmand-care fetches, decrypts, verifies and sends a signed receipt"
"$BIN"/hegn fetch --server "https://127.0.0.1:$PORT" \
	--cert "$DEMO/pki/hovmand-care.pem" --key "$DEMO/pki/hovmand-care.key" \
	--ca "$DEMO/pki/ca.pem" --crl "$DEMO/pki/crl.pem" --out "$DEMO/inbox/hovmand-care" --once

echo "== what hovmand-care received ($DEMO/inbox/hovmand-care/$id.json)"
python3 -m json.tool --no-ensure-ascii "$DEMO/inbox/hovmand-care/$id.json" 2>/dev/null || cat "$DEMO/inbox/hovmand-care/$id.json"

echo "== the staff web page: https://127.0.0.1:$PORT/web/ (users in $DEMO/demo-users.txt;"
echo "   the browser must trust the demo CA $DEMO/pki/ca.pem or accept the warning)"
echo "== the receipt and the delivery log"
"$BIN"/hegn -c "$DEMO/hegn.conf" status "$id"

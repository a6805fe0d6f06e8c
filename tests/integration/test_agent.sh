#!/usr/bin/env bash
# hegn agent, the reference client: fetch, write JSON and PDF, receipts, and
# time-usage reports from a spreadsheet's CSV, against a real hegnd.
. "$(dirname "$0")/lib.sh"

start_demo
A="$T/agent"
agent() {
	"$HEGN" agent --server "$URL" --cert "$D/pki/hovmand-care.pem" --key "$D/pki/hovmand-care.key" \
		--ca "$D/pki/ca.pem" --chain "$D/pki/chain.pem" --crl "$D/pki/crl.pem" --out "$A" "$@"
}

out=$("$HEGN" -c "$D/hegn.conf" send --as ringsted-visitation "$D/examples/referral.json")
id=$(printf '%s' "$out" | sed -n 's/.*"id": *"\([^"]*\)".*/\1/p')
check "a referral is waiting" test -n "$id"

check "agent --once fetches, verifies and acknowledges" agent --once
check "the content is written as JSON" grep -q '"kind":"referral"' "$A/$id.json"
check "the message is written as a PDF" sh -c "head -c 5 '$A/$id.pdf' | grep -q '%PDF'"
if command -v pdftotext >/dev/null; then
	pdftotext "$A/$id.pdf" "$T/msg.txt"
	check "the PDF names the message" grep -q "$id" "$T/msg.txt"
	check "the PDF has the care text" grep -q "rengøring" "$T/msg.txt"
else
	echo "SKIP: pdftotext is not installed"
fi
check "the files are private (0600)" test "$(stat -c %a "$A/$id.json")" = 600
"$HEGN" -c "$D/hegn.conf" status "$id" >"$T/status.txt"
check "the message is acknowledged" grep -q 'state: acknowledged' "$T/status.txt"
rm -f "$A/$id.json"
check "a second run succeeds" agent --once
check "... and does not fetch the acknowledged message again" test ! -f "$A/$id.json"

# Time usage from a spreadsheet: only about citizens assigned to the provider.
"$HEGN" -c "$D/hegn.conf" assign add --cpr 2509479989 --provider hovmand-care \
	--services practical_help --from "$(date -u +%F)" >/dev/null
printf 'cpr;date;service;minutes;visit_id\r\n2509479989;%s;practical_help;45;v-1\r\n2509479989;%s;practical_help;30;\r\n' \
	"$(date -u +%F)" "$(date -u +%F)" >"$T/tid.csv"
before=$(rows messages)
check "agent submits the time-usage spreadsheet" agent --once --time-usage "$T/tid.csv" \
	--to ringsted-visitation --gateway-cert "$D/pki/gateway.pem"
check "... one message for the one citizen" test "$(rows messages)" = $((before + 1))
check "... and marks the file sent" test -f "$T/tid.csv.sent"
check "... so it is not sent twice" test ! -f "$T/tid.csv"
kind=$(sqlite3 "$D/state/hegn.db" "SELECT kind FROM messages ORDER BY created_ms DESC LIMIT 1")
check "the visitation office got a time_usage message" test "$kind" = time_usage
printf 'cpr;date;service;minutes\r\n2509479989;2026-11-25;practical_help;9999\r\n' >"$T/bad.csv"
agent --once --time-usage "$T/bad.csv" --to ringsted-visitation --gateway-cert "$D/pki/gateway.pem" \
	2>"$T/bad.err" && r=0 || r=$?
check "a bad spreadsheet is refused" test "$r" != 0
check "... naming the line and the column" grep -q 'line 2: minutes' "$T/bad.err"
check "... without the CPR" sh -c "! grep -q 2509479989 '$T/bad.err'"
check "... and is kept for correction" test -f "$T/bad.csv"
check "the daemon's log carries no CPR" sh -c "! grep -q 2509479989 '$T/hegnd.log'"
check "the daemon's log has no sanitizer report" no_sanitizer_reports
finish

#!/usr/bin/env bash
# The authentication cache (docs/performance.md): hegnd verifies a kept-alive
# client's chain once a minute rather than on every request, but a reload
# that changes the trust store refuses the same client at once, and a
# refused chain is never remembered.
. "$(dirname "$0")/lib.sh"

start_demo
cp "$D/pki/ca.pem" "$D/pki/chain.pem" "$D/pki/crl.pem" "$T/"
PID=$(cat "$D/run/hegnd.pid")

# hovmand-care's requests against the original anchor, all on one connection.
hovmand() {
	curl -sS -o /dev/null -w '%{http_code}\n' --cacert "$T/ca.pem" \
		--cert "$D/pki/hovmand-care.pem" --key "$D/pki/hovmand-care.key" "$@"
}
# reload_until CODE: send SIGHUP, then wait for hovmand-care to get CODE.
reload_until() {
	local i
	kill -HUP "$PID"
	for i in $(seq 1 50); do
		[ "$(hovmand "$URL/v1/inbox")" = "$1" ] && return 0
		sleep 0.2
	done
	return 1
}

codes=$(hovmand "$URL/v1/inbox" -o /dev/null "$URL/v1/inbox" -o /dev/null "$URL/v1/inbox" |
	sort -u | tr -d '\n')
check "three requests on one kept-alive connection: 200 each" test "$codes" = 200

for i in 1 2; do
	code=$(as revoked-provider "$URL/v1/inbox")
	check "revoked client certificate, attempt $i: 401" test "$code" = 401
done

# Another world's PKI as the whole trust store: the cached chain must not count.
"$HEGN" demo init "$T/other" --port 1 --keytype p256 >/dev/null
cp "$T/other/pki/ca.pem" "$T/other/pki/chain.pem" "$T/other/pki/crl.pem" "$D/pki/"
check "after a reload with other trust anchors the same client is refused" reload_until 401

cp "$T/ca.pem" "$T/chain.pem" "$T/crl.pem" "$D/pki/"
check "... and accepted again once the anchors are back" reload_until 200
check "no sanitizer reports" no_sanitizer_reports
finish

#!/usr/bin/env bash
# TLS (issue 8, item 6): testssl.sh against a demo hegnd finds nothing of
# severity HIGH or CRITICAL; TLS 1.0 and 1.1, CBC suites and static-RSA key
# exchange are off.  Without testssl.sh (Debian: testssl.sh) it skips.
TESTSSL=$(command -v testssl || command -v testssl.sh || true)
if [ -z "$TESTSSL" ]; then
	echo "SKIP: testssl.sh is not installed (apt-get install testssl.sh)"
	exit 77
fi
. "$(dirname "$0")/lib.sh"

start_demo
# Protocols, cipher categories, forward secrecy, server defaults and the
# vulnerability checks: a minute or two.  --add-ca: the demo CA is not in
# the system store, and an untrusted chain would be reported as CRITICAL.
set +e
timeout 300 "$TESTSSL" --quiet --color 0 --warnings off --ip 127.0.0.1 \
	--add-ca "$D/pki/ca.pem" --jsonfile "$T/testssl.json" \
	-p -s -f -S -U "127.0.0.1:$PORT" >"$T/testssl.txt" 2>&1
rc=$?
set -e
echo "testssl exited $rc; its report:"
sed 's/^/# /' "$T/testssl.txt"
check "testssl.sh wrote its JSON findings" test -s "$T/testssl.json"

# One line per finding: SEVERITY ID FINDING.
python3 - "$T/testssl.json" >"$T/findings.txt" <<'PY'
import json, sys
for f in json.load(open(sys.argv[1])):
    print(f.get("severity", "?"), f.get("id", "?"), f.get("finding", "").replace("\n", " "))
PY
# Client-initiated renegotiation, asked directly: openssl s_client renegotiates
# ("R") on a TLS 1.2 connection and then sends a request, which s_client writes
# only after the renegotiation.  hegnd must end the connection instead, so the
# request is never answered; without the "R" the same request is (the probe
# works).  testssl's own check times a burst of renegotiations and, on a loaded
# machine (CI runs this under the sanitizers), now and then reads a slow refusal
# as acceptance: its finding stands only when the probe confirms it.
renego_probe() { # renego_probe OUT [R]: one request over TLS 1.2, after a renegotiation with R
	{
		sleep 1
		[ -z "${2:-}" ] || printf 'R\n'
		sleep 1
		printf 'GET /v1/inbox HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'
		sleep 3
	} | timeout 30 openssl s_client -tls1_2 -connect "127.0.0.1:$PORT" -CAfile "$D/pki/ca.pem" \
		-cert "$D/pki/hovmand-care.pem" -key "$D/pki/hovmand-care.key" >"$1" 2>&1 || true
}
renego_probe "$T/plain.txt"
check "the probe: a request over TLS 1.2 is answered" grep -q '^HTTP/1.1 200' "$T/plain.txt"
renego_probe "$T/renego.txt" R
check "a client-initiated renegotiation is attempted" grep -q RENEGOTIATING "$T/renego.txt"
check "... and ends the connection: the request after it gets no answer" \
	sh -c "! grep -q '^HTTP/1.1' '$T/renego.txt'"
if grep -qE '^(HIGH|CRITICAL) secure_client_renego' "$T/findings.txt" &&
    ! grep -q '^HTTP/1.1' "$T/renego.txt"; then
	echo "# secure_client_renego: testssl's finding, not confirmed by the probe above"
	grep -v 'secure_client_renego' "$T/findings.txt" >"$T/findings2.txt"
	mv "$T/findings2.txt" "$T/findings.txt"
fi
if grep -E '^(HIGH|CRITICAL) ' "$T/findings.txt"; then
	not_ok "testssl.sh: no finding of severity HIGH or CRITICAL"
else
	ok "testssl.sh: no finding of severity HIGH or CRITICAL"
fi
sed 's/^/# finding: /' "$T/findings.txt"
finding() { awk -v id="$1" '$2 == id { $1 = ""; $2 = ""; sub(/^  /, ""); print; exit }' "$T/findings.txt"; }
check "testssl.sh ran its checks (TLS 1.2 seen offered)" sh -c "echo '$(finding TLS1_2)' | grep -q '^offered'"
check "testssl.sh: TLS 1.0 not offered" sh -c "echo '$(finding TLS1)' | grep -q '^not offered'"
check "testssl.sh: TLS 1.1 not offered" sh -c "echo '$(finding TLS1_1)' | grep -q '^not offered'"
check "testssl.sh: TLS 1.3 offered" sh -c "echo '$(finding TLS1_3)' | grep -q 'offered' && ! echo '$(finding TLS1_3)' | grep -q 'not offered'"
# "Obsolete CBC ciphers (AES, ARIA etc.)": cipherlist_AVERAGE in testssl 3.0,
# cipherlist_OBSOLETED in 3.2.
cbc="$(finding cipherlist_AVERAGE)$(finding cipherlist_OBSOLETED)"
check "testssl.sh: no CBC suites (obsolete CBC ciphers not offered)" \
	sh -c "echo '$cbc' | grep -q '^not offered'"
check "testssl.sh: no NULL, export, RC4, 3DES suites" sh -c \
	"for i in cipherlist_NULL cipherlist_EXPORT cipherlist_LOW cipherlist_3DES_IDEA; do grep -q \"^[A-Z]* \$i not offered\" '$T/findings.txt' || exit 1; done"
check "testssl.sh: the chain is trusted through the demo CA" sh -c "echo '$(finding cert_chain_of_trust)' | grep -qi '^passed'"

# The same with stock openssl s_client, offering what hegnd must refuse.
handshake() { # handshake ARGS...: 0 if a TLS session was set up
	echo | timeout 10 openssl s_client -connect "127.0.0.1:$PORT" -CAfile "$D/pki/ca.pem" "$@" \
		>"$T/s_client.txt" 2>&1
	grep -q '^New, TLSv1\.[0-9], Cipher is [A-Z]' "$T/s_client.txt"
}
check "openssl s_client: TLS 1.2 with ECDHE-RSA-AES256-GCM-SHA384 works" \
	handshake -tls1_2 -cipher ECDHE-RSA-AES256-GCM-SHA384
check "openssl s_client: TLS 1.3 works" handshake -tls1_3
refused() { ! handshake "$@"; }
# SECLEVEL=0 so the client really offers TLS 1.0/1.1 and SHA-1 suites.
check "openssl s_client: TLS 1.1 fails" refused -tls1_1 -cipher 'DEFAULT@SECLEVEL=0'
check "openssl s_client: TLS 1.0 fails" refused -tls1 -cipher 'DEFAULT@SECLEVEL=0'
check "openssl s_client: CBC suite AES128-SHA fails" refused -tls1_2 -cipher AES128-SHA
check "openssl s_client: CBC suite ECDHE-RSA-AES128-SHA256 fails" \
	refused -tls1_2 -cipher ECDHE-RSA-AES128-SHA256
check "openssl s_client: static RSA key exchange (AES128-GCM-SHA256) fails" \
	refused -tls1_2 -cipher AES128-GCM-SHA256

check "no sanitizer reports from hegnd" no_sanitizer_reports
finish

#!/usr/bin/env bash
# Hostile CMS and certificates against a real hegnd (issue 8 item 5): signed
# attributes at fault (the faults of OpenSSL's must-reject CMS test objects,
# made with the demo party's own key so the fault is the only defect),
# malformed DER, certificate loops, huge chains and signers whose key usage
# does not allow signing, as sealed submissions and as receipts; client
# chains over TLS.  Each is refused with a 4xx whose JSON error names the
# problem, nothing is stored, and hegnd stays up without a sanitizer report.
# The objects come from tests/integration/hostile-cms (see its header).
. "$(dirname "$0")/lib.sh"

GEN="$HEGN_BUILDDIR/tests/integration/hostile-cms"
[ -x "$GEN" ] || { echo "missing $GEN (make check builds it)"; exit 1; }
H="$T/hostile"
mkdir -p "$H/sub" "$H/rcpt" "$H/certs" "$H/der"

start_demo

alive() { kill -0 "$(cat "$D/run/hegnd.pid")" 2>/dev/null; }
# Seal a SignedData DER to the gateway with stock openssl, as a provider's software does.
seal() {
	openssl cms -encrypt -binary -outform DER -aes-256-gcm -in "$1" \
		-recip "$D/pki/gateway.pem" -keyopt rsa_padding_mode:oaep -out "$2"
}
# refused WHAT CODE WANT: a 4xx with a JSON error whose text holds WANT ("-": any).
refused() {
	local what=$1 code=$2 want=$3 msg
	msg=$(sed -n 's/.*"message": *"\([^"]*\)".*/\1/p' "$T/body" | head -c 200)
	if [ "$code" -ge 400 ] && [ "$code" -lt 500 ] && grep -q '"error"' "$T/body" &&
		[ -n "$msg" ] && { [ "$want" = - ] || grep -qF -- "$want" "$T/body"; }; then
		ok "$what: $code ($msg)"
	else
		not_ok "$what: $code $(head -c 400 "$T/body")"
	fi
}
submit_sealed() { # FILE: POST a sealed submission without a client certificate
	anon -H 'Content-Type: application/pkcs7-mime' --data-binary @"$1" "$URL/v1/messages"
}
post_receipt() { # FILE: POST a receipt for $mid as hovmand-care
	as hovmand-care -H 'Content-Type: application/pkcs7-mime' --data-binary @"$1" \
		"$URL/v1/messages/$mid/receipt"
}
restart_hegnd() {
	local pid
	pid=$(cat "$D/run/hegnd.pid")
	kill -TERM "$pid"
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	"$HEGND" -c "$D/hegn.conf" -D 2>>"$T/hegnd.log"
}

# The objects whose certificates are at fault chain to a test anchor of
# their own, trusted beside the demo CA with its CRL, so that key usage,
# loops and lengths are what refuses them, not an unknown root.
cat >"$T/obs.json" <<JSON
{"kind": "observation", "to": "ringsted-visitation", "citizen": {"cpr": "2509479989"},
 "care": {"text": "Borgeren har faaet ny rollator."}}
JSON
"$GEN" certs "$D/pki/hovmand-care.pem" "$D/pki/hovmand-care.key" "$T/obs.json" "$H/certs" \
	>"$H/certs.list"
cat "$H/certs/anchor.pem" >>"$D/pki/ca.pem"
cat "$H/certs/anchor-crl.pem" >>"$D/pki/crl.pem"
check "hegnd -t accepts the added test anchor" "$HEGND" -t -c "$D/hegn.conf"
restart_hegnd
check "hegnd restarted with the test anchor" alive
check "staff assign the citizen to hovmand-care" "$HEGN" -c "$D/hegn.conf" assign add \
	--cpr 2509479989 --provider hovmand-care --services practical_help --from "$(date -u +%F)"

# 1. Signed attributes at fault, in sealed submissions.
"$GEN" attrs "$D/pki/hovmand-care.pem" "$D/pki/hovmand-care.key" "$T/obs.json" "$H/sub" \
	>"$H/sub.list"
check "the generator made every attribute fault" test "$(wc -l <"$H/sub.list")" -ge 19
cat "$D/pki/ca.pem" "$D/pki/chain.pem" >"$T/trust.pem"
check "stock openssl verifies the re-signed control" openssl cms -verify -binary -inform DER \
	-in "$H/sub/control.der" -CAfile "$T/trust.pem" -out /dev/null
before=$(rows messages)
while IFS=$'\t' read -r f want; do
	[ "$want" = ok ] && continue
	seal "$H/sub/$f" "$H/sub/$f.sealed"
	code=$(submit_sealed "$H/sub/$f.sealed")
	refused "sealed submission, ${f%.der}" "$code" "$want"
done <"$H/sub.list"
check "attribute faults: no message stored" test "$(rows messages)" = "$before"
check "attribute faults: no delivery stored" test "$(rows deliveries)" = "$before"
check "hegnd is alive after the attribute faults" alive

# 2. Certificates at fault, in sealed submissions.
while IFS=$'\t' read -r f want; do
	case $f in *.pem) continue ;; esac
	seal "$H/certs/$f" "$H/certs/$f.sealed"
	code=$(submit_sealed "$H/certs/$f.sealed")
	refused "sealed submission, ${f%.der}" "$code" "$want"
done <"$H/certs.list"
check "certificate faults: no message stored" test "$(rows messages)" = "$before"
check "hegnd is alive after the certificate faults" alive

# 3. Malformed DER: the sealed object itself, and the SignedData inside it.
seal "$H/sub/control.der" "$H/control.sealed"
"$GEN" der "$H/control.sealed" "$H/der/env-" >"$H/der-env.list"
"$GEN" der "$H/sub/control.der" "$H/der/sig-" >"$H/der-sig.list"
check "the generator made the malformed variants" test "$(wc -l <"$H/der-env.list")" -ge 16
while IFS=$'\t' read -r f _; do
	code=$(submit_sealed "$f")
	refused "malformed sealed object, $(basename "$f" .der)" "$code" -
done <"$H/der-env.list"
while IFS=$'\t' read -r f _; do
	seal "$f" "$f.sealed"
	code=$(submit_sealed "$f.sealed")
	refused "malformed SignedData in a sealed object, $(basename "$f" .der)" "$code" -
done <"$H/der-sig.list"
check "malformed DER: no message stored" test "$(rows messages)" = "$before"
check "hegnd is alive after the malformed DER" alive

# The control, made the same way, is taken: the refusals above were the faults'.
code=$(submit_sealed "$H/control.sealed")
check "the re-signed control submission is accepted ($code)" test "$code" = 201
check "... and stored once" test "$(rows messages)" = "$((before + 1))"

# 4. Receipts: a message for hovmand-care, fetched, then hostile receipts for it.
code=$(as ringsted-visitation -H 'Content-Type: application/json' \
	--data-binary @"$D/examples/referral.json" "$URL/v1/messages")
mid=$(json_field id)
check "a referral for hovmand-care is submitted" test "$code" = 201
code=$(as hovmand-care -H 'Accept: application/pkcs7-mime' "$URL/v1/messages/$mid")
cp "$T/body" "$T/fetched.der"
check "hovmand-care fetches it" test "$code" = 200
printf '{"message_id":"%s","sha256":"%s","status":"accepted"}' "$mid" \
	"$(sha256sum "$T/fetched.der" | cut -d' ' -f1)" >"$T/receipt.json"
"$GEN" attrs "$D/pki/hovmand-care.pem" "$D/pki/hovmand-care.key" "$T/receipt.json" "$H/rcpt" \
	>"$H/rcpt.list"
rbefore=$(rows receipts)
while IFS=$'\t' read -r f want; do
	[ "$want" = ok ] && continue
	code=$(post_receipt "$H/rcpt/$f")
	refused "receipt, ${f%.der}" "$code" "$want"
done <"$H/rcpt.list"
while IFS=$'\t' read -r f want; do
	case $f in *.pem) continue ;; esac
	code=$(post_receipt "$H/certs/$f")
	refused "receipt, ${f%.der}" "$code" "$want"
done <"$H/certs.list"
"$GEN" der "$H/rcpt/control.der" "$H/der/rcpt-" >"$H/der-rcpt.list"
while IFS=$'\t' read -r f _; do
	code=$(post_receipt "$f")
	refused "malformed receipt, $(basename "$f" .der)" "$code" -
done <"$H/der-rcpt.list"
check "hostile receipts: no receipt stored" test "$(rows receipts)" = "$rbefore"
code=$(as ringsted-visitation -H 'Accept: application/json' "$URL/v1/messages/$mid")
check "hostile receipts: the message is not acknowledged" sh -c "! grep -q '\"state\": *\"acknowledged\"' '$T/body'"
code=$(post_receipt "$H/rcpt/control.der")
check "the re-signed control receipt is taken ($code)" test "$code" = 200
check "... and acknowledges the message" grep -q '"acknowledged"' "$T/body"
check "hegnd is alive after the receipts" alive

# 5. TLS client chains: 200 CAs deep (more than hegnd reads), and two CAs
# certifying each other.  Refused in the handshake or with 401.
while read -r c want; do
	code=$(curl -sS -o "$T/body" -w '%{http_code}' --cacert "$D/pki/ca.pem" \
		--cert "$H/certs/$c.pem" --key "$H/certs/$c.key" "$URL/v1/inbox" 2>"$T/curl.err" ||
		true)
	if [ "$code" = 000 ]; then
		ok "client chain $c: refused in the handshake ($(head -c 120 "$T/curl.err"))"
	else
		refused "client chain $c" "$code" "$want"
		check "... with 401" test "$code" = 401
	fi
	check "hegnd is alive after $c" alive
done <<LIST
tls-chain-200 chain of 201 certificates is longer than the 16 accepted
tls-loop certificate Loop CA B issued by an unknown CA
LIST
code=$(as hovmand-care "$URL/v1/inbox")
check "a good client is still served" test "$code" = 200

check "hegn audit verify passes" "$HEGN" -c "$D/hegn.conf" audit verify
check "the database is intact" test "$(sqlite3 "$D/state/hegn.db" 'PRAGMA integrity_check')" = ok
check "the daemon's log has no sanitizer report" no_sanitizer_reports

finish

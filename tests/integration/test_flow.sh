#!/usr/bin/env bash
# The whole foundation flow against a real hegnd, with curl and stock
# `openssl cms` as the other parties' software.
. "$(dirname "$0")/lib.sh"

start_demo
check "hegnd -t accepts the demo configuration" "$HEGND" -t -c "$D/hegn.conf"

# 1. The visitation office submits a referral as JSON (hegn holds its key).
code=$(as ringsted-visitation -H 'Content-Type: application/json' \
	--data-binary @"$D/examples/referral.json" "$URL/v1/messages")
check "JSON referral accepted with 201" test "$code" = 201
id=$(json_field id)
check "the answer names the message id" test -n "$id"
check "the recipient is hovmand-care" body_has '"hovmand-care"'

# Idempotency: the same id and content answers the same message; other content 409.
sed 's/"kind"/"id": "it-fixed-1", "kind"/' "$D/examples/referral.json" >"$T/fixed.json"
code=$(as ringsted-visitation -H 'Content-Type: application/json' --data-binary @"$T/fixed.json" "$URL/v1/messages")
check "client id: first submission 201" test "$code" = 201
code=$(as ringsted-visitation -H 'Content-Type: application/json' --data-binary @"$T/fixed.json" "$URL/v1/messages")
check "client id: identical repeat answers 200" test "$code" = 200
check "client id: the repeat names the same id" body_has '"it-fixed-1"'
sed 's/"kind"/"id": "it-fixed-1", "deadline": "2030-01-01T00:00:00Z", "kind"/' "$D/examples/referral.json" >"$T/fixed2.json"
code=$(as ringsted-visitation -H 'Content-Type: application/json' --data-binary @"$T/fixed2.json" "$URL/v1/messages")
check "client id: other content answers 409" test "$code" = 409

# 2. The provider's system fetches with its own certificate.
code=$(as hovmand-care "$URL/v1/inbox")
check "inbox answers 200" test "$code" = 200
check "inbox lists the referral" body_has "\"$id\""
check "inbox names the sender" body_has '"from": *"ringsted-visitation"'
code=$(as hovmand-care -H 'Accept: application/pkcs7-mime' -o "$T/sealed.der" "$URL/v1/messages/$id")
cp "$T/body" "$T/sealed.der" 2>/dev/null || true
check "fetch answers 200" test "$code" = 200
check "stock openssl cms decrypts what was fetched" \
	openssl cms -decrypt -inform DER -in "$T/sealed.der" -recip "$D/pki/hovmand-care.pem" \
	-inkey "$D/pki/hovmand-care.key" -out "$T/signed.der"
check "stock openssl cms verifies the sender's signature" \
	openssl cms -verify -inform DER -in "$T/signed.der" -CAfile "$D/pki/ca.pem" \
	-out "$T/payload.json"
check "the payload is the referral" grep -q '"kind":"referral"' "$T/payload.json"
check "the payload names the sender" grep -q '"from":"ringsted-visitation"' "$T/payload.json"
openssl cms -cmsout -print -inform DER -in "$T/signed.der" >"$T/signed.txt"
check "the signer is ringsted-visitation's certificate" \
	grep -q 'Ringsted Kommune, Visitationen' "$T/signed.txt"
check "the signature is RSASSA-PSS" grep -q 'rsassaPss' "$T/signed.txt"
check "the signature carries the message id (contentIdentifier)" grep -q 'id-smime-aa-contentIdentifier\|contentIdentifier' "$T/signed.txt"
openssl cms -cmsout -print -inform DER -in "$T/sealed.der" >"$T/sealed.txt"
check "sealed as AuthEnvelopedData with AES-256-GCM" grep -qi 'aes-256-gcm\|id-aes256-GCM' "$T/sealed.txt"
check "key transport is RSA-OAEP" grep -qi 'rsaesOaep' "$T/sealed.txt"
code=$(as hovmand-care "$URL/v1/inbox")
check "a fetched message leaves the inbox" sh -c "! grep -q '\"$id\"' '$T/body'"

# 3. The signed receipt.
sha=$(sha256sum "$T/sealed.der" | cut -d' ' -f1)
printf '{"message_id":"%s","sha256":"%s","status":"accepted"}' "$id" "$sha" >"$T/receipt.json"
openssl cms -sign -binary -nodetach -outform DER -md sha256 -in "$T/receipt.json" \
	-signer "$D/pki/hovmand-care.pem" -inkey "$D/pki/hovmand-care.key" \
	-keyopt rsa_padding_mode:pss -keyopt rsa_pss_saltlen:32 -out "$T/receipt.der"
printf '{"message_id":"%s","sha256":"%s","status":"accepted"}' "$id" \
	"0000000000000000000000000000000000000000000000000000000000000000" >"$T/badreceipt.json"
openssl cms -sign -binary -nodetach -outform DER -md sha256 -in "$T/badreceipt.json" \
	-signer "$D/pki/hovmand-care.pem" -inkey "$D/pki/hovmand-care.key" -out "$T/badreceipt.der"
code=$(as hovmand-care -H 'Content-Type: application/pkcs7-mime' --data-binary @"$T/badreceipt.der" "$URL/v1/messages/$id/receipt")
check "a receipt with the wrong digest is refused with 400" test "$code" = 400
check "the refusal names receipt.sha256" body_has 'receipt.sha256'
openssl cms -sign -binary -nodetach -outform DER -md sha256 -in "$T/receipt.json" \
	-signer "$D/pki/ringsted-homecare.pem" -inkey "$D/pki/ringsted-homecare.key" -out "$T/otherreceipt.der"
code=$(as ringsted-homecare -H 'Content-Type: application/pkcs7-mime' --data-binary @"$T/otherreceipt.der" "$URL/v1/messages/$id/receipt")
check "a receipt from a party that is not the recipient gets 404" test "$code" = 404
code=$(as hovmand-care -H 'Content-Type: application/pkcs7-mime' --data-binary @"$T/receipt.der" "$URL/v1/messages/$id/receipt")
check "the signed receipt is taken" test "$code" = 200
check "the message is acknowledged" body_has '"acknowledged"'
code=$(as hovmand-care -H 'Content-Type: application/pkcs7-mime' --data-binary @"$T/badreceipt.der" "$URL/v1/messages/$id/receipt")
check "a second, different receipt gets 400 or 409" sh -c "[ $code = 409 ] || [ $code = 400 ]"

# 4. The status and the delivery log.
code=$(as ringsted-visitation -H 'Accept: application/json' "$URL/v1/messages/$id")
check "status answers 200 to the sender" test "$code" = 200
check "status: acknowledged" body_has '"state": *"acknowledged"'
for ev in submitted sealed fetched acknowledged; do
	check "delivery log has $ev" body_has "\"event\": *\"$ev\""
done
"$HEGN" -c "$D/hegn.conf" status "$id" >"$T/status.txt"
check "hegn status ends with acknowledged" sh -c "tail -n 1 '$T/status.txt' | grep -q 'acknowledged\$'"
code=$(as ringsted-homecare -H 'Accept: application/json' "$URL/v1/messages/$id")
check "another provider cannot see the status (404)" test "$code" = 404
code=$(as ringsted-homecare -H 'Accept: application/pkcs7-mime' "$URL/v1/messages/$id")
check "another provider cannot fetch the message (404)" test "$code" = 404
code=$(as ringsted-homecare -H 'Accept: application/json' "$URL/v1/messages/no-such-message")
check "an unknown id answers the same 404" test "$code" = 404

# 5. A sealed submission made with stock openssl by a party that holds its own key.
# Providers write only about citizens assigned to them: the referral above
# starts next month, so staff assign the citizen from today.
check "staff assign the citizen to hovmand-care from today" "$HEGN" -c "$D/hegn.conf" assign add \
	--cpr 2509479989 --provider hovmand-care --services practical_help --from "$(date -u +%F)"
cat >"$T/obs.json" <<JSON
{"kind": "observation", "to": "ringsted-visitation", "citizen": {"cpr": "2509479989"},
 "care": {"text": "Borgeren virker mere forvirret end sidste uge."}}
JSON
openssl cms -sign -binary -nodetach -outform DER -md sha256 -in "$T/obs.json" \
	-signer "$D/pki/hovmand-care.pem" -inkey "$D/pki/hovmand-care.key" \
	-keyopt rsa_padding_mode:pss -keyopt rsa_pss_saltlen:32 -out "$T/obs.signed"
openssl cms -encrypt -binary -inform DER -outform DER -aes-256-gcm -in "$T/obs.signed" \
	-recip "$D/pki/gateway.pem" -keyopt rsa_padding_mode:oaep -out "$T/obs.sealed"
before=$(rows messages)
cp "$T/obs.sealed" "$T/obs.bad"
size=$(stat -c %s "$T/obs.bad")
flip_byte "$T/obs.bad" $((size - 40))
code=$(anon -H 'Content-Type: application/pkcs7-mime' --data-binary @"$T/obs.bad" "$URL/v1/messages")
check "a sealed submission with one byte changed gets 4xx ($code)" sh -c "[ $code -ge 400 ] && [ $code -lt 500 ]"
check "... and leaves nothing stored" test "$(rows messages)" = "$before"
code=$(anon -H 'Content-Type: application/pkcs7-mime' --data-binary @"$T/obs.sealed" "$URL/v1/messages")
check "a sealed submission from openssl cms is accepted without a client certificate" test "$code" = 201
obs_id=$(json_field id)
code=$(as ringsted-visitation -H 'Accept: application/pkcs7-mime' -o "$T/obs.fetched" "$URL/v1/messages/$obs_id")
cp "$T/body" "$T/obs.fetched"
openssl cms -decrypt -inform DER -in "$T/obs.fetched" -recip "$D/pki/ringsted-visitation.pem" \
	-inkey "$D/pki/ringsted-visitation.key" -out "$T/obs.inner"
check "the recipient gets the sender's own signature, byte for byte" cmp -s "$T/obs.inner" "$T/obs.signed"
# PKCS#1 v1.5 key transport and AES-CBC: openssl cms's defaults.
sed 's/forvirret/glad/' "$T/obs.json" >"$T/obs2.json"
openssl cms -sign -binary -nodetach -outform DER -md sha256 -in "$T/obs2.json" \
	-signer "$D/pki/hovmand-care.pem" -inkey "$D/pki/hovmand-care.key" -out "$T/obs2.signed"
openssl cms -encrypt -binary -inform DER -outform DER -aes-256-cbc -in "$T/obs2.signed" \
	-recip "$D/pki/gateway.pem" -out "$T/obs2.sealed"
code=$(as hovmand-care -H 'Content-Type: application/pkcs7-mime' --data-binary @"$T/obs2.sealed" "$URL/v1/messages")
check "openssl cms defaults (PKCS#1 v1.5, AES-CBC) accepted over mutual TLS" test "$code" = 201
code=$(as ringsted-homecare -H 'Content-Type: application/pkcs7-mime' --data-binary @"$T/obs2.sealed" "$URL/v1/messages")
check "a sealed submission signed by another party than the TLS client gets 403" test "$code" = 403
# Signed by the revoked provider.
openssl cms -sign -binary -nodetach -outform DER -md sha256 -in "$T/obs2.json" \
	-signer "$D/pki/revoked-provider.pem" -inkey "$D/pki/revoked-provider.key" -out "$T/rev.signed"
openssl cms -encrypt -binary -inform DER -outform DER -aes-256-gcm -in "$T/rev.signed" \
	-recip "$D/pki/gateway.pem" -out "$T/rev.sealed"
before=$(rows messages)
code=$(anon -H 'Content-Type: application/pkcs7-mime' --data-binary @"$T/rev.sealed" "$URL/v1/messages")
check "a submission signed with a revoked certificate gets 403" test "$code" = 403
check "... saying revoked" body_has 'revoked'
check "... and leaves nothing stored" test "$(rows messages)" = "$before"
# Encrypted to someone else than the gateway.
openssl cms -encrypt -binary -inform DER -outform DER -aes-256-gcm -in "$T/obs2.signed" \
	-recip "$D/pki/hovmand-care.pem" -out "$T/wrong.sealed"
code=$(anon -H 'Content-Type: application/pkcs7-mime' --data-binary @"$T/wrong.sealed" "$URL/v1/messages")
check "a submission sealed to another key gets 400" test "$code" = 400

# 6. Authentication.
code=$(anon "$URL/v1/inbox")
check "no client certificate: 401" test "$code" = 401
code=$(as revoked-provider "$URL/v1/inbox")
check "revoked client certificate: 401" test "$code" = 401
check "... saying revoked" body_has 'revoked'
code=$(as expired-provider "$URL/v1/inbox")
check "expired client certificate: 401" test "$code" = 401
check "... saying expired" body_has 'expired'
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/rogue.key" -out "$T/rogue.pem" -days 2 \
	-subj "/CN=Hovmand Care ApS/O=Hovmand Care ApS" 2>/dev/null
code=$(curl -sS -o "$T/body" -w '%{http_code}' --cacert "$D/pki/ca.pem" --cert "$T/rogue.pem" --key "$T/rogue.key" "$URL/v1/inbox")
check "a certificate from another CA: 401" test "$code" = 401

# 7. Bad input: a clear 4xx naming the field, nothing stored.
before=$(rows messages)
code=$(as ringsted-visitation -H 'Content-Type: application/json' --data-binary '{"kind": "referral", ' "$URL/v1/messages")
check "malformed JSON: 400" test "$code" = 400
check "... saying malformed" body_has 'malformed'
sed 's/2509479989/3102479989/' "$D/examples/referral.json" >"$T/badcpr.json"
code=$(as ringsted-visitation -H 'Content-Type: application/json' --data-binary @"$T/badcpr.json" "$URL/v1/messages")
check "a CPR with a date that does not exist: 400" test "$code" = 400
check "... naming citizen.cpr" body_has 'citizen.cpr'
check "... without repeating the number" sh -c "! grep -q 3102479989 '$T/body'"
sed 's/"referral"/"telegram"/' "$D/examples/referral.json" >"$T/badkind.json"
code=$(as ringsted-visitation -H 'Content-Type: application/json' --data-binary @"$T/badkind.json" "$URL/v1/messages")
check "an unknown kind: 400 naming kind" sh -c "[ $code = 400 ] && grep -q kind '$T/body'"
head -c 40000000 /dev/zero >"$T/huge"
code=$(as ringsted-visitation -H 'Content-Type: application/json' --data-binary @"$T/huge" "$URL/v1/messages" || true)
check "an oversized body: 413" test "$code" = 413
code=$(as ringsted-visitation -H 'Content-Type: text/plain' --data-binary 'hello' "$URL/v1/messages")
check "an unsupported content type: 415" test "$code" = 415
code=$(as hovmand-care -H 'Content-Type: application/json' --data-binary @"$D/examples/observation.json" "$URL/v1/messages")
check "a party whose key hegn does not hold cannot submit JSON: 403" test "$code" = 403
code=$(as ringsted-visitation -H 'Content-Type: application/json' --data-binary @"$D/examples/time_usage.json" "$URL/v1/messages")
check "the visitation office cannot send time_usage to itself or a provider: 4xx" sh -c "[ $code -ge 400 ] && [ $code -lt 500 ]"
check "none of the refused submissions left a row" test "$(rows messages)" = "$before"
check "no partial deliveries either" test "$(rows deliveries)" = "$(rows messages)"

# 8. hegn's own tools: send as a hosted party, fetch as the provider, status.
out=$("$HEGN" -c "$D/hegn.conf" send --as ringsted-visitation "$D/examples/care_update.json")
cid=$(printf '%s' "$out" | sed -n 's/.*"id": *"\([^"]*\)".*/\1/p')
check "hegn send submits" test -n "$cid"
check "hegn fetch fetches, verifies and acknowledges" "$HEGN" fetch --server "$URL" \
	--cert "$D/pki/hovmand-care.pem" --key "$D/pki/hovmand-care.key" --ca "$D/pki/ca.pem" \
	--crl "$D/pki/crl.pem" --out "$T/agent" --once
check "the payload was written" grep -q '"kind":"care_update"' "$T/agent/$cid.json"
"$HEGN" -c "$D/hegn.conf" status "$cid" >"$T/status2.txt"
check "hegn status shows acknowledged" grep -q 'state: acknowledged' "$T/status2.txt"
check "hegn cert verify accepts a valid certificate" "$HEGN" -c "$D/hegn.conf" cert verify "$D/pki/hovmand-care.pem"
check "hegn cert verify refuses the revoked one" sh -c "! '$HEGN' -c '$D/hegn.conf' cert verify '$D/pki/revoked-provider.pem' | grep -q 'result:  valid'"
"$HEGN" -c "$D/hegn.conf" cert verify "$D/pki/expired-provider.pem" >"$T/cv.txt" || true
check "hegn cert verify says expired" grep -q expired "$T/cv.txt"
"$HEGN" -c "$D/hegn.conf" cert verify "$D/pki/hovmand-care.pem" --at "$(date -u -d '+3 years' +%Y-%m-%dT%H:%M:%SZ)" >"$T/cv2.txt" && r=0 || r=$?
check "hegn cert verify --at a time after expiry fails" test "$r" != 0
check "... saying expired" grep -q expired "$T/cv2.txt"

# referral_with_pdf BYTES OUT [whole]: the example referral with one PDF attachment of BYTES
# random bytes; with "whole", without its health data, so hovmand-care gets it unminimised.
referral_with_pdf() {
	python3 - "$D/examples/referral.json" "$1" "$2" "${3:-}" <<'PY'
import base64, json, os, sys
m = json.load(open(sys.argv[1]))
a = m["attachments"][0]
m["attachments"] = [dict(a, filename="a.pdf", content_type="application/pdf",
                         data=base64.b64encode(os.urandom(int(sys.argv[2]))).decode())]
if sys.argv[4] == "whole":
    del m["health"]
json.dump(m, open(sys.argv[3], "w"))
PY
}

# 8b. A large copy is sent in pieces from the store (RELAY_SEALED_PIECE, 1 MiB): a referral
# with a 2.5 MB attachment of random bytes is fetched whole and exact.
referral_with_pdf 2500000 "$T/big.json"
code=$(as ringsted-visitation -H 'Content-Type: application/json' --data-binary @"$T/big.json" "$URL/v1/messages")
check "a referral with a 2.5 MB attachment is accepted (201)" test "$code" = 201
big_id=$(json_field id)
code=$(as hovmand-care -H 'Accept: application/pkcs7-mime' -D "$T/big.headers" "$URL/v1/messages/$big_id")
cp "$T/body" "$T/big.der"
check "the large copy is fetched (200)" test "$code" = 200
big_sha=$(sqlite3 "$D/state/hegn.db" "SELECT sealed_sha256 FROM deliveries WHERE message_id = '$big_id' AND recipient = 'hovmand-care'")
check "what arrived is the stored copy, byte for byte" test "$(sha256sum "$T/big.der" | cut -d' ' -f1)" = "$big_sha"
check "... as its Digest-SHA256 header says" grep -qi "^Digest-SHA256: $big_sha" "$T/big.headers"
check "... and its Content-Length" grep -qi "^Content-Length: $(stat -c %s "$T/big.der")" "$T/big.headers"
check "the large copy is larger than one piece" test "$(stat -c %s "$T/big.der")" -gt 2097152
check "stock openssl cms decrypts the large copy" \
	openssl cms -decrypt -inform DER -in "$T/big.der" -recip "$D/pki/hovmand-care.pem" \
	-inkey "$D/pki/hovmand-care.key" -out "$T/big.signed"
check "... and verifies the sender's signature over the referral with its attachment" sh -c \
	"openssl cms -verify -inform DER -in '$T/big.signed' -CAfile '$D/pki/ca.pem' -out '$T/big.payload' &&
	python3 -c 'import json,sys; a=json.load(open(sys.argv[1]))[\"attachments\"][0][\"data\"]; b=json.load(open(sys.argv[2]))[\"attachments\"][0][\"data\"]; sys.exit(a!=b)' '$T/big.json' '$T/big.payload'"

# The copy above was minimised (hovmand-care may not see health data), made from a copy of the
# parsed message that shares its attachment. Sent whole, the parsed attachment is let go once
# the message is in canonical form, before signing (docs/performance.md, item 13): the copy
# still carries it, exactly.
referral_with_pdf 2500000 "$T/whole.json" whole
code=$(as ringsted-visitation -H 'Content-Type: application/json' --data-binary @"$T/whole.json" "$URL/v1/messages")
check "a referral with a 2.5 MB attachment and no health data is accepted (201)" test "$code" = 201
whole_id=$(json_field id)
code=$(as hovmand-care -H 'Accept: application/pkcs7-mime' "$URL/v1/messages/$whole_id")
cp "$T/body" "$T/whole.der"
check "... fetched (200), decrypted and verified by stock openssl, with its attachment exact" sh -c \
	"[ $code = 200 ] &&
	openssl cms -decrypt -inform DER -in '$T/whole.der' -recip '$D/pki/hovmand-care.pem' \
	-inkey '$D/pki/hovmand-care.key' -out '$T/whole.signed' &&
	openssl cms -verify -inform DER -in '$T/whole.signed' -CAfile '$D/pki/ca.pem' -out '$T/whole.payload' &&
	python3 -c 'import json,sys; a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2])); sys.exit(a[\"attachments\"]!=b[\"attachments\"] or \"minimised\" in b)' '$T/whole.json' '$T/whole.payload'"

# 8c. A copy that goes away while it is being sent (retention, here by hand): the transfer is
# broken off, never finished with other bytes, and hegnd goes on.
referral_with_pdf 15000000 "$T/huge.json"
code=$(as ringsted-visitation -H 'Content-Type: application/json' --data-binary @"$T/huge.json" "$URL/v1/messages")
check "a referral with a 15 MB attachment is accepted (201)" test "$code" = 201
huge_id=$(json_field id)
curl -sS -o "$T/huge.der" --limit-rate 1M --cacert "$D/pki/ca.pem" --cert "$D/pki/hovmand-care.pem" \
	--key "$D/pki/hovmand-care.key" -H 'Accept: application/pkcs7-mime' "$URL/v1/messages/$huge_id" \
	2>"$T/huge.err" &
huge_pid=$!
sleep 2
huge_len=$(sqlite3 -cmd '.timeout 10000' "$D/state/hegn.db" "SELECT length(sealed) FROM sealed_copies
	WHERE seq IN (SELECT seq FROM deliveries WHERE message_id = '$huge_id')")
sqlite3 -cmd '.timeout 10000' "$D/state/hegn.db" "DELETE FROM sealed_copies WHERE seq IN
	(SELECT seq FROM deliveries WHERE message_id = '$huge_id')"
huge_rc=0
wait "$huge_pid" || huge_rc=$?
check "the transfer is broken off (curl: partial file)" test "$huge_rc" = 18
check "... after some bytes and before the end" sh -c \
	"s=\$(stat -c %s '$T/huge.der'); [ \$s -gt 0 ] && [ \$s -lt ${huge_len:-0} ]"
check "... and hegnd says why, without content" grep -q 'sending a sealed copy stopped at byte .*gone or was replaced' "$T/hegnd.log"
code=$(as hovmand-care "$URL/v1/inbox")
check "hegnd goes on serving" test "$code" = 200

# 9. Privacy: no CPR in the daemon's log.
check "the daemon's log carries no CPR" sh -c "! grep -q 2509479989 '$T/hegnd.log'"

# 10. Configuration checks and a clean stop.
chmod 0644 "$D/pki/gateway.key"
"$HEGND" -t -c "$D/hegn.conf" >"$T/check.txt" 2>&1 && r=0 || r=$?
check "hegnd -t refuses a world-readable key" test "$r" != 0
check "... naming the file" grep -q 'gateway.key' "$T/check.txt"
chmod 0600 "$D/pki/gateway.key"
"$HEGND" -t -c "$D/hegn.conf" >"$T/check.txt" 2>&1 && r=0 || r=$?
check "hegnd -t passes the demo world" test "$r" = 0
check "... whose TLS key is not the gateway's" sh -c "! grep -q 'tls_key is the gateway' '$T/check.txt'"
sed 's|^tls_cert = .*|tls_cert = pki/gateway-fullchain.pem|; s|^tls_key = .*|tls_key = pki/gateway.key|' \
	"$D/hegn.conf" >"$D/shared-tls.conf"
"$HEGND" -t -c "$D/shared-tls.conf" >"$T/check.txt" 2>&1 && r=0 || r=$?
check "hegnd -t warns when TLS uses the gateway's key (and still passes: $r)" sh -c \
	"[ $r = 0 ] && grep -q \"warning: tls_key is the gateway's own key\" '$T/check.txt'"
pid=$(cat "$D/run/hegnd.pid")
kill -TERM "$pid"
for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
check "hegnd stops on SIGTERM" sh -c "! kill -0 $pid 2>/dev/null"
check "... and removes its pid file" test ! -f "$D/run/hegnd.pid"
check "the daemon's log has no sanitizer report" no_sanitizer_reports
check "the database is intact" test "$(sqlite3 "$D/state/hegn.db" 'PRAGMA integrity_check')" = ok

finish

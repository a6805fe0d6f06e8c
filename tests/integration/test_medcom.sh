#!/usr/bin/env bash
# MedCom messages through a real hegnd (issue 7): the published examples
# sealed by region-hospital with stock openssl, routed by SOR/GLN and by
# assignment; broken copies refused with a fatal-error Acknowledgement;
# de-duplication on (Bundle.id, MessageHeader.id); Acknowledgements as
# receipts.
. "$(dirname "$0")/lib.sh"

SHARED=${HEGN_SHARED:-${HEGN_TOP_SRCDIR:-$(dirname "$0")/../..}/../shared}
EX="$SHARED/medcom-examples"
if [ ! -f "$EX/hospitalnotification-admit-inpatient.json" ]; then
	echo "SKIP: no MedCom examples in $EX (set HEGN_SHARED)"
	exit 77
fi
EDIT="python3 $(dirname "$0")/medcom_edit.py"
CPR=2509479989

# The demo world, with ringsted-homecare reading MedCom (format = medcom).
tries=0
while :; do
	PORT=$(( (RANDOM % 20000) + 30000 + ($$ % 1000) ))
	rm -rf "$D"
	"$HEGN" demo init "$D" --port "$PORT" >/dev/null
	awk '{ print } /^\[party ringsted-homecare\]$/ { print "format = medcom" }' \
		"$D/hegn.conf" >"$T/hegn.conf" && cat "$T/hegn.conf" >"$D/hegn.conf"
	if "$HEGND" -c "$D/hegn.conf" -D 2>>"$T/hegnd.log"; then
		break
	fi
	tries=$((tries + 1))
	[ $tries -lt 5 ] || { echo "cannot start hegnd"; cat "$T/hegnd.log"; exit 1; }
done
URL="https://127.0.0.1:$PORT"

. "$(dirname "$0")/medcom_lib.sh"
is_fhir_answer() { grep -qi '^content-type: *application/fhir+json' "$T/headers"; }
ack_code_is() { grep -q "\"code\": *\"$1\"" "$T/body" && grep -q 'acknowledgement-message' "$T/body"; }
# fetch PARTY ID OUT [openssl verify options]: fetch, decrypt and verify with stock openssl;
# the content lands in OUT, the signer's certificate in OUT.signer.
fetch() {
	as "$1" -H 'Accept: application/pkcs7-mime' "$URL/v1/messages/$2" >/dev/null &&
	cp "$T/body" "$T/f.der" &&
	openssl cms -decrypt -inform DER -in "$T/f.der" -recip "$D/pki/$1.pem" -inkey "$D/pki/$1.key" \
		-out "$T/f.signed" 2>/dev/null &&
	openssl cms -verify -inform DER -in "$T/f.signed" -CAfile "$D/pki/ca.pem" "${@:4}" \
		-signer "$3.signer" -out "$3" 2>/dev/null
}
# hegn's format is a copy the gateway derived and signed; the demo gateway
# certificate is not issued for S/MIME, so openssl is told any purpose will do.
fetch_hegn() { fetch "$@" && signer_is "$3.signer" gateway; }
signer_is() { openssl x509 -in "$1" -noout -fingerprint -sha256 >"$1.fp" &&
	openssl x509 -in "$D/pki/$2.pem" -noout -fingerprint -sha256 | cmp -s - "$1.fp"; }
in_inbox() { as "$1" "$URL/v1/inbox" >/dev/null && grep -q "\"$2\"" "$T/body"; }

check "staff assign the citizen to hovmand-care (reads hegn's JSON)" "$HEGN" -c "$D/hegn.conf" \
	assign add --cpr $CPR --provider hovmand-care --services practical_help --from "$(date -u +%F)"
check "staff assign the citizen to ringsted-homecare (reads MedCom)" "$HEGN" -c "$D/hegn.conf" \
	assign add --cpr $CPR --provider ringsted-homecare --services nursing --from "$(date -u +%F)"

# --- 1. The three HospitalNotifications, sealed by the hospital.
declare -A ID
for ex in admit-inpatient discharge-home start-leave; do
	f="$EX/hospitalnotification-$ex.json"
	seal "$f" "$T/$ex.sealed"
	code=$(post_sealed "$T/$ex.sealed")
	check "$ex: accepted with 201 ($code)" test "$code" = 201
	check "$ex: the answer is a MedCom Acknowledgement (application/fhir+json)" is_fhir_answer
	check "$ex: ... with response.code ok" ack_code_is ok
	check "$ex: ... acknowledging the MessageHeader.id" grep -q "\"identifier\": *\"$(header_id "$f")\"" "$T/body"
	cp "$T/body" "$T/$ex.ack"
	ID[$ex]=$(location_id)
	check "$ex: the Location names the message" test -n "${ID[$ex]}"
	check "$ex: in ringsted-visitation's inbox" in_inbox ringsted-visitation "${ID[$ex]}"
	check "$ex: in hovmand-care's inbox (assigned)" in_inbox hovmand-care "${ID[$ex]}"
	check "$ex: in ringsted-homecare's inbox (assigned)" in_inbox ringsted-homecare "${ID[$ex]}"
	check "$ex: ringsted-homecare (format medcom) gets the original FHIR, hospital's signature verified" \
		fetch ringsted-homecare "${ID[$ex]}" "$T/$ex.medcom"
	check "$ex: ... byte for byte" cmp -s "$T/$ex.medcom" "$f"
	check "$ex: ... signed by region-hospital" signer_is "$T/$ex.medcom.signer" region-hospital
	check "$ex: hovmand-care (format hegn) gets hegn's JSON, verified" fetch_hegn hovmand-care "${ID[$ex]}" "$T/$ex.hegn"
	check "$ex: ... with the CPR" grep -q "\"cpr\":\"$CPR\"" "$T/$ex.hegn"
	check "$ex: ... and the hospital's name" grep -q '"hospital":"Hjerteafdelingen' "$T/$ex.hegn"
	check "$ex: ringsted-visitation (format hegn) fetches it too" \
		fetch_hegn ringsted-visitation "${ID[$ex]}" "$T/$ex.visit"
done
check "admit-inpatient is hegn's admission_notice" grep -q '"kind":"admission_notice"' "$T/admit-inpatient.hegn"
check "discharge-home is hegn's discharge_notice" grep -q '"kind":"discharge_notice"' "$T/discharge-home.hegn"
check "start-leave is hegn's leave_notice" grep -q '"kind":"leave_notice"' "$T/start-leave.hegn"
check "the event time is the Provenance's" grep -q '"event_time":"2022-12-18T09:45:32+02:00"' "$T/discharge-home.hegn"

# --- 2. The CareCommunication goes to the municipality only.
seal "$EX/carecommunication-new.json" "$T/cc.sealed"
code=$(post_sealed "$T/cc.sealed")
check "carecommunication: accepted with 201 ($code)" test "$code" = 201
check "carecommunication: acknowledged ok" ack_code_is ok
cc=$(location_id)
check "carecommunication: ringsted-visitation fetches it (hegn's observation)" \
	fetch_hegn ringsted-visitation "$cc" "$T/cc.hegn"
check "carecommunication: ... carrying the text as care.text" grep -q '"text":"We have a question' "$T/cc.hegn"
as hovmand-care "$URL/v1/inbox" >/dev/null
check "carecommunication: not in hovmand-care's inbox" sh -c "! grep -q '\"$cc\"' '$T/body'"

# --- 2b. A hosted party's CareCommunication as application/fhir+json: hegn signs it.
VIS=5790001348120,953741000016009
$EDIT "$EX/carecommunication-new.json" "$T/cc-hc.json" from-to "$VIS,5790009000020,123456789012345"
code=$(post_fhir ringsted-visitation "$T/cc-hc.json")
check "a CareCommunication from ringsted-visitation (fhir+json) to ringsted-homecare: 201 ($code)" test "$code" = 201
check "... acknowledged ok as application/fhir+json" sh -c "grep -qi '^content-type: *application/fhir+json' '$T/headers' && grep -q '\"code\": *\"ok\"' '$T/body'"
cchc=$(location_id)
check "... ringsted-homecare (format medcom) gets the FHIR" fetch ringsted-homecare "$cchc" "$T/cc-hc.medcom"
check "... byte for byte as submitted" cmp -s "$T/cc-hc.medcom" "$T/cc-hc.json"
check "... signed by hegn with ringsted-visitation's key" signer_is "$T/cc-hc.medcom.signer" ringsted-visitation

# --- 2c. Our own failure is a transient-error Acknowledgement with the 5xx, so the sender resends.
# Another process holds the store's write lock past hegnd's busy timeout (5 s).
$EDIT "$T/cc-hc.json" "$T/tr1.json" new-header
$EDIT "$T/tr1.json" "$T/transient.json" new-bundle
python3 -c 'import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
open(sys.argv[2], "w").close()
time.sleep(12)
db.execute("ROLLBACK")' "$D/state/hegn.db" "$T/locked" &
locker=$!
while [ ! -e "$T/locked" ]; do sleep 0.1; done
code=$(post_fhir ringsted-visitation "$T/transient.json")
check "with the store locked by another process: 503 ($code)" test "$code" = 503
check "... answered with a MedCom Acknowledgement" is_fhir_answer
check "... transient-error" ack_code_is transient-error
check "... whose OperationOutcome asks for a resend" grep -q 'send it again later' "$T/body"
wait "$locker"
code=$(post_fhir ringsted-visitation "$T/transient.json")
check "the same envelope sent again once the store is free: 201 ($code)" test "$code" = 201
check "... acknowledged ok" ack_code_is ok

$EDIT "$EX/carecommunication-new.json" "$T/cc-hm.json" from-to "$VIS,5790009000013,123456789012346"
$EDIT "$T/cc-hm.json" "$T/cc-hm1.json" new-header
$EDIT "$T/cc-hm1.json" "$T/cc-hm2.json" new-bundle
code=$(post_fhir ringsted-visitation "$T/cc-hm2.json")
check "the same to hovmand-care (format hegn): 201 ($code)" test "$code" = 201
cchm=$(location_id)
check "... hovmand-care gets hegn's format, verified" fetch hovmand-care "$cchm" "$T/cc-hm.hegn"
check "... a care_update" grep -q '"kind":"care_update"' "$T/cc-hm.hegn"
check "... with the letter's text" grep -q '"description":"We have a question' "$T/cc-hm.hegn"
check "... signer ringsted-visitation" signer_is "$T/cc-hm.hegn.signer" ringsted-visitation
code=$(post_fhir region-hospital "$EX/hospitalnotification-admit-inpatient.json")
check "fhir+json from a party whose key hegn does not hold: 403 ($code)" test "$code" = 403
$EDIT "$EX/carecommunication-new.json" "$T/cc-nobody.json" from-to "$VIS,5790000000005,1"
code=$(post_fhir ringsted-visitation "$T/cc-nobody.json")
check "a receiver no party has: 422 ($code)" test "$code" = 422
check "... with a fatal-error Acknowledgement naming the receiver" sh -c \
	"grep -q fatal-error '$T/body' && grep -q 'no party has GLN 5790000000005' '$T/body'"

# --- 3. Duplicates and resends.
before_d=$(rows deliveries)
before_m=$(rows messages)
code=$(post_sealed "$T/admit-inpatient.sealed")
check "duplicate: answered 200 ($code)" test "$code" = 200
check "duplicate: the first acknowledgement again, byte for byte" cmp -s "$T/body" "$T/admit-inpatient.ack"
$EDIT "$EX/hospitalnotification-admit-inpatient.json" "$T/resend.json" new-bundle
seal "$T/resend.json" "$T/resend.sealed"
code=$(post_sealed "$T/resend.sealed")
check "resend (new Bundle.id, same MessageHeader.id): answered 200 ($code)" test "$code" = 200
check "resend: the first acknowledgement again, byte for byte" cmp -s "$T/body" "$T/admit-inpatient.ack"
code=$(post_sealed "$T/resend.sealed")
check "the resend repeated: the first acknowledgement again" cmp -s "$T/body" "$T/admit-inpatient.ack"
check "duplicates and resends are not delivered again" test "$(rows deliveries)" = "$before_d"
check "... nor stored as messages" test "$(rows messages)" = "$before_m"
$EDIT "$EX/hospitalnotification-admit-inpatient.json" "$T/reuse.json" new-header
seal "$T/reuse.json" "$T/reuse.sealed"
code=$(post_sealed "$T/reuse.sealed")
check "a reused Bundle.id with a new MessageHeader.id: 422 ($code)" test "$code" = 422
check "... with a fatal-error Acknowledgement naming Bundle.id" sh -c "grep -q 'fatal-error' '$T/body' && grep -q 'Bundle.id' '$T/body'"
check "... and not delivered" test "$(rows deliveries)" = "$before_d"

# --- 4. Broken copies: 422, a fatal-error Acknowledgement naming the problem, nothing stored.
broken() { # broken OP EXPECTED-TEXT
	$EDIT "$EX/hospitalnotification-admit-inpatient.json" "$T/b-$1.json" "$1"
	seal "$T/b-$1.json" "$T/b-$1.sealed"
	code=$(post_sealed "$T/b-$1.sealed")
	check "broken ($1): refused with 422 ($code)" test "$code" = 422
	check "broken ($1): the body is a fatal-error Acknowledgement" sh -c \
		"grep -qi '^content-type: *application/fhir+json' '$T/headers' && grep -q '\"fatal-error\"' '$T/body'"
	check "broken ($1): naming the problem ($2)" grep -q -- "$2" "$T/body"
	check "broken ($1): nothing stored" test "$(rows messages)" = "$before_m"
	check "broken ($1): the CPR is not in the answer" sh -c "! grep -q $CPR '$T/body'"
}
broken no-cpr 'Patient.identifier: no CPR'
broken two-primary '2 primary destinations'
broken bad-gln 'bad check digit'
broken no-provenance 'Provenance: none'
broken bad-event 'eventCoding'
broken no-zone 'time zone'

# --- 5. Sender identifiers must be the signer's.
seal "$EX/hospitalnotification-admit-inpatient.json" "$T/wrongsigner.sealed" hovmand-care
code=$(post_sealed "$T/wrongsigner.sealed")
check "a notice with the hospital's identifiers signed by hovmand-care: 403 ($code)" test "$code" = 403
check "... with a fatal-error Acknowledgement naming MessageHeader.sender" sh -c \
	"grep -q fatal-error '$T/body' && grep -q 'MessageHeader.sender' '$T/body'"

# --- 6. Acknowledgements become receipts, and are never acknowledged.
$EDIT "$EX/acknowledgement-ok.json" "$T/ack-ok.json" ack-for "$(header_id "$EX/hospitalnotification-admit-inpatient.json")"
code=$(post_fhir ringsted-visitation "$T/ack-ok.json")
check "acknowledgement-ok from ringsted-visitation (hosted, fhir+json): 200 ($code)" test "$code" = 200
check "... taken as the admission's receipt: acknowledged" grep -q '"acknowledged"' "$T/body"
check "... and not itself acknowledged" sh -c "! grep -q 'acknowledgement-message' '$T/body'"
as region-hospital -H 'Accept: application/json' "$URL/v1/messages/${ID[admit-inpatient]}" >/dev/null
check "the hospital sees ringsted-visitation's receipt as accepted" grep -q '"status": *"accepted"' "$T/body"
$EDIT "$EX/acknowledgement-transient-error.json" "$T/ack-te.json" ack-for "$(header_id "$EX/hospitalnotification-discharge-home.json")"
code=$(post_fhir ringsted-visitation "$T/ack-te.json")
check "acknowledgement-transient-error: 200 ($code)" test "$code" = 200
check "... the discharge's receipt: rejected" grep -q '"rejected"' "$T/body"
as region-hospital -H 'Accept: application/json' "$URL/v1/messages/${ID[discharge-home]}" >/dev/null
check "... with the OperationOutcome's text as the reason" grep -q '"status": *"rejected", *"reason": *"[^"]' "$T/body"
code=$(post_fhir ringsted-visitation "$EX/acknowledgement-ok.json")
check "an acknowledgement of an unknown message: 404 ($code)" test "$code" = 404

# A format=medcom provider answers its copy with a signed MedCom Acknowledgement.
$EDIT "$EX/acknowledgement-ok.json" "$T/hc-ack1.json" ack-for "$(header_id "$EX/hospitalnotification-admit-inpatient.json")"
$EDIT "$T/hc-ack1.json" "$T/hc-ack.json" ack-from 5790009000020,123456789012345
openssl cms -sign -binary -nodetach -outform DER -md sha256 -in "$T/hc-ack.json" \
	-signer "$D/pki/ringsted-homecare.pem" -inkey "$D/pki/ringsted-homecare.key" -out "$T/hc-ack.der"
code=$(as ringsted-homecare -H 'Content-Type: application/pkcs7-mime' --data-binary @"$T/hc-ack.der" \
	"$URL/v1/messages/${ID[admit-inpatient]}/receipt")
check "ringsted-homecare's signed MedCom Acknowledgement as a receipt: 200 ($code)" test "$code" = 200
check "... acknowledged" grep -q '"acknowledged"' "$T/body"
code=$(as ringsted-homecare -H 'Content-Type: application/pkcs7-mime' --data-binary @"$T/hc-ack.der" \
	"$URL/v1/messages/${ID[discharge-home]}/receipt")
check "... for another message (wrong response.identifier): 400 ($code)" test "$code" = 400

# --- 7. A death ends the assignments.
$EDIT "$EX/hospitalnotification-admit-inpatient.json" "$T/d1.json" new-header
$EDIT "$T/d1.json" "$T/d2.json" new-bundle
$EDIT "$T/d2.json" "$T/death.json" deceased
seal "$T/death.json" "$T/death.sealed"
code=$(post_sealed "$T/death.sealed")
check "a notice with Patient.deceased: 201 ($code)" test "$code" = 201
death=$(location_id)
check "... reaches the assigned provider" fetch_hegn hovmand-care "$death" "$T/death.hegn"
check "... as hegn's death_notice" grep -q '"kind":"death_notice"' "$T/death.hegn"
"$HEGN" -c "$D/hegn.conf" assign list --cpr $CPR >"$T/assign.txt" 2>&1
check "... and the assignments end" sh -c "! grep -q '\"state\": *\"active\"' '$T/assign.txt' && grep -q 'death' '$T/assign.txt'"
$EDIT "$EX/hospitalnotification-discharge-home.json" "$T/after1.json" new-header
$EDIT "$T/after1.json" "$T/after.json" new-bundle
seal "$T/after.json" "$T/after.sealed"
code=$(post_sealed "$T/after.sealed")
check "a later notice: 201 ($code)" test "$code" = 201
after=$(location_id)
as region-hospital -H 'Accept: application/json' "$URL/v1/messages/$after" >/dev/null
check "... recorded, delivered to nobody (no provider serves the citizen)" \
	grep -q '"event": *"withheld"' "$T/body"
check "no sanitizer reports from hegnd" no_sanitizer_reports
finish

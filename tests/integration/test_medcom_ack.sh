#!/usr/bin/env bash
# MedCom Acknowledgements to the sender, cc destinations and X-eCPR citizens
# through a real hegnd (issue 7, docs/medcom.md): a named destination's hegn
# receipt (accepted or rejected) or MedCom Acknowledgement reaches the
# MedCom sender as an Acknowledgement in its inbox, fetched and checked with
# stock openssl; an Acknowledgement is never acknowledged; a duplicate makes
# no second delivery and no second Acknowledgement; cc destinations are
# routed under the policy; a citizen known by an X-eCPR only is routed by
# the same rules as one with a CPR, and the X-eCPR is never logged.
. "$(dirname "$0")/lib.sh"

SHARED=${HEGN_SHARED:-${HEGN_TOP_SRCDIR:-$(dirname "$0")/../..}/../shared}
EX="$SHARED/medcom-examples"
if [ ! -f "$EX/hospitalnotification-admit-inpatient.json" ]; then
	echo "SKIP: no MedCom examples in $EX (set HEGN_SHARED)"
	exit 77
fi
EDIT="python3 $(dirname "$0")/medcom_edit.py"
CPR=2509479989
ECPR=0101701A2B
HOSP_SOR=265161000016000
HOSP_GLN=5790000209354
VIS=5790001348120,953741000016009
HOVMAND_CC=5790009000013,123456789012346
HOMECARE_CC=5790009000020,123456789012345

start_demo

. "$(dirname "$0")/medcom_lib.sh"
# fresh IN OUT: a new letter (new MessageHeader.id and Bundle.id) from an example.
fresh() { $EDIT "$1" "$2.h" new-header && $EDIT "$2.h" "$2" new-bundle; }
# fetch PARTY ID OUT: fetch, decrypt and verify with stock openssl; the signer lands in OUT.signer.
fetch() {
	as "$1" -H 'Accept: application/pkcs7-mime' "$URL/v1/messages/$2" >/dev/null &&
	cp "$T/body" "$3.der" &&
	openssl cms -decrypt -inform DER -in "$3.der" -recip "$D/pki/$1.pem" -inkey "$D/pki/$1.key" \
		-out "$3.signed" 2>/dev/null &&
	openssl cms -verify -inform DER -in "$3.signed" -CAfile "$D/pki/ca.pem" -purpose any \
		-signer "$3.signer" -out "$3" 2>/dev/null
}
signer_is() { openssl x509 -in "$1" -noout -fingerprint -sha256 >"$1.fp" &&
	openssl x509 -in "$D/pki/$2.pem" -noout -fingerprint -sha256 | cmp -s - "$1.fp"; }
# receipt PARTY ID STATUS [REASON]: fetch the copy and answer it with hegn's signed receipt.
receipt() {
	local sha
	as "$1" -H 'Accept: application/pkcs7-mime' "$URL/v1/messages/$2" >/dev/null || return 1
	sha=$(sha256sum "$T/body" | cut -d' ' -f1)
	printf '{"message_id":"%s","sha256":"%s","status":"%s","reason":"%s"}' "$2" "$sha" "$3" "${4:-}" \
		>"$T/receipt.json"
	openssl cms -sign -binary -nodetach -outform DER -md sha256 -in "$T/receipt.json" \
		-signer "$D/pki/$1.pem" -inkey "$D/pki/$1.key" \
		-keyopt rsa_padding_mode:pss -keyopt rsa_pss_saltlen:32 -out "$T/receipt.der" || return 1
	as "$1" -H 'Content-Type: application/pkcs7-mime' --data-binary @"$T/receipt.der" \
		"$URL/v1/messages/$2/receipt"
}
# inbox_acks PARTY: the ids of the Acknowledgements in PARTY's inbox, one a line.
inbox_acks() {
	as "$1" "$URL/v1/inbox" >/dev/null &&
	python3 -c 'import json,sys
for m in json.load(open(sys.argv[1]))["messages"]:
    if m["kind"] == "acknowledgement":
        print(m["id"], m["from"])' "$T/body"
}
acks() { sqlite3 "$D/state/hegn.db" "SELECT count(*) FROM messages WHERE kind = 'acknowledgement'"; }
copies_of() { sqlite3 "$D/state/hegn.db" "SELECT recipient FROM deliveries WHERE message_id = '$1' ORDER BY recipient" | tr '\n' ' '; }
# ack_is FILE CODE RESPONSE-ID SENDER-SOR SENDER-GLN [TEXT]: a MedCom Acknowledgement as expected.
ack_is() {
	python3 - "$@" <<'EOF'
import json, sys
f, code, resp, sor, gln = sys.argv[1:6]
text = sys.argv[6] if len(sys.argv) > 6 else None
b = json.load(open(f))
assert b["resourceType"] == "Bundle" and b["type"] == "message"
res = {e["fullUrl"].split("/ig/acknowledgement/")[-1]: e["resource"] for e in b["entry"]}
h = b["entry"][0]["resource"]
assert h["eventCoding"]["code"] == "acknowledgement-message", h["eventCoding"]
assert h["response"]["code"] == code, h["response"]
assert h["response"]["identifier"] == resp, h["response"]
def ids(ref):
    o = res[ref]
    return {i["system"]: i["value"] for i in o["identifier"]}
s = ids(h["sender"]["reference"])
assert s["urn:oid:1.2.208.176.1.1"] == sor and s["https://www.gs1.org/gln"] == gln, s
d = h["destination"]
assert len(d) == 1 and d[0]["endpoint"] == "https://sor2.sum.dsdn.dk/#id=265161000016000", d
rcv = ids(d[0]["receiver"]["reference"])
assert rcv["urn:oid:1.2.208.176.1.1"] == "265161000016000", rcv
assert rcv["https://www.gs1.org/gln"] == "5790000209354", rcv
if code != "ok":
    oo = res[h["response"]["details"]["reference"]]
    assert text in oo["issue"][0]["details"]["text"], oo
EOF
}

check "staff assign the citizen to hovmand-care" "$HEGN" -c "$D/hegn.conf" \
	assign add --cpr $CPR --provider hovmand-care --services practical_help --from "$(date -u +%F)"

# --- 1. A hegn receipt, accepted: an ok Acknowledgement in the hospital's inbox.
ADMIT="$EX/hospitalnotification-admit-inpatient.json"
seal "$ADMIT" "$T/admit.sealed"
code=$(post_sealed "$T/admit.sealed")
check "the hospital's admission notice: 201 ($code)" test "$code" = 201
admit=$(location_id)
cp "$T/body" "$T/admit.ack201"
check "the 201 Acknowledgement is still the answer (ok)" grep -q '"code": *"ok"' "$T/admit.ack201"
check "no Acknowledgement in the hospital's inbox before an answer" test -z "$(inbox_acks region-hospital)"
code=$(receipt ringsted-visitation "$admit" accepted)
check "ringsted-visitation (the primary destination) accepts it with hegn's receipt: 200 ($code)" test "$code" = 200
check "one Acknowledgement stored" test "$(acks)" = 1
inbox_acks region-hospital >"$T/acks1"
check "the hospital's inbox lists one Acknowledgement from ringsted-visitation" \
	sh -c "test \$(wc -l <'$T/acks1') = 1 && grep -q ' ringsted-visitation$' '$T/acks1'"
ack1=$(cut -d' ' -f1 "$T/acks1")
check "the hospital fetches it: decrypted and verified with stock openssl" fetch region-hospital "$ack1" "$T/ack1"
check "... signed by ringsted-visitation (hegn holds its key)" signer_is "$T/ack1.signer" ringsted-visitation
check "... an ok Acknowledgement of the admission's MessageHeader.id, from ringsted-visitation's SOR and GLN, to the hospital" \
	ack_is "$T/ack1" ok "$(header_id "$ADMIT")" 953741000016009 5790001348120
check "... with a new MessageHeader.id (not the 201's)" sh -c \
	"test '$(header_id "$T/ack1")' != '$(header_id "$T/admit.ack201")'"
check "... and no CPR in it" sh -c "! grep -q $CPR '$T/ack1'"
check "fetched, it leaves the inbox" test -z "$(inbox_acks region-hospital)"
as region-hospital -H 'Accept: application/json' "$URL/v1/messages/$ack1" >/dev/null
check "its copy is complete on delivery (an Acknowledgement waits for no receipt)" \
	grep -q '"state": *"acknowledged"' "$T/body"
check "... with no deadline" sh -c "! grep -q '\"deadline\"' '$T/body'"
as region-hospital -H 'Accept: application/json' "$URL/v1/messages/$admit" >/dev/null
check "the hospital's status of the admission shows the receipt (hegn's view)" \
	grep -q '"status": *"accepted"' "$T/body"
check "... and names the Acknowledgement sent (event medcom_ack)" grep -q "\"medcom_ack\".*$ack1" "$T/body"
check "the audit log has the Acknowledgement's submission under rule medcom-acknowledgement" sh -c \
	"test \$(sqlite3 '$D/state/hegn.db' \"SELECT count(*) FROM audit WHERE message_id = '$ack1' AND entry LIKE '%medcom-acknowledgement%'\") -ge 2"
check "the audit log holds the chain" "$HEGN" -c "$D/hegn.conf" audit verify

code=$(as ringsted-visitation -H 'Content-Type: application/pkcs7-mime' --data-binary @"$T/receipt.der" \
	"$URL/v1/messages/$admit/receipt")
check "the same receipt again: 200 ($code)" test "$code" = 200
check "... and no second Acknowledgement" test "$(acks)" = 1
code=$(receipt hovmand-care "$admit" accepted)
check "hovmand-care (a copy routed by assignment, not named by the hospital) accepts: 200 ($code)" test "$code" = 200
check "... no Acknowledgement to the hospital for it" test "$(acks)" = 1

# --- 2. A duplicate and a resend: no second delivery, no second Acknowledgement.
before_d=$(rows deliveries)
code=$(post_sealed "$T/admit.sealed")
check "the admission again (duplicate): 200 ($code)" test "$code" = 200
check "... the first 201 Acknowledgement, byte for byte" cmp -s "$T/body" "$T/admit.ack201"
$EDIT "$ADMIT" "$T/resend.json" new-bundle
seal "$T/resend.json" "$T/resend.sealed"
code=$(post_sealed "$T/resend.sealed")
check "a resend (new Bundle.id): 200 ($code)" test "$code" = 200
check "no copy delivered again" test "$(rows deliveries)" = "$before_d"
check "no second Acknowledgement" test "$(acks)" = 1

# --- 3. An Acknowledgement is never acknowledged.
code=$(receipt region-hospital "$ack1" accepted)
check "a hegn receipt for the Acknowledgement is taken: 200 ($code)" test "$code" = 200
check "... and makes no Acknowledgement" test "$(acks)" = 1
check "... nothing in ringsted-visitation's inbox" test -z "$(inbox_acks ringsted-visitation)"
$EDIT "$EX/acknowledgement-ok.json" "$T/ack-of-ack1.json" from-to "$HOSP_GLN,$HOSP_SOR,$VIS"
$EDIT "$T/ack-of-ack1.json" "$T/ack-of-ack.json" ack-for "$(header_id "$T/ack1")"
seal "$T/ack-of-ack.json" "$T/ack-of-ack.sealed"
code=$(post_sealed "$T/ack-of-ack.sealed")
check "a MedCom Acknowledgement of the Acknowledgement: refused (404: no such letter) ($code)" test "$code" = 404
check "... still one Acknowledgement" test "$(acks)" = 1

# --- 4. A hegn receipt, rejected: a fatal-error Acknowledgement with the reason.
DIS="$EX/hospitalnotification-discharge-home.json"
seal "$DIS" "$T/dis.sealed"
code=$(post_sealed "$T/dis.sealed")
check "the hospital's discharge notice: 201 ($code)" test "$code" = 201
dis=$(location_id)
code=$(receipt ringsted-visitation "$dis" rejected "wrong ward: please check the discharge")
check "ringsted-visitation rejects it: 200 ($code)" test "$code" = 200
inbox_acks region-hospital >"$T/acks2"
check "one Acknowledgement in the hospital's inbox" test "$(wc -l <"$T/acks2")" = 1
ack2=$(cut -d' ' -f1 "$T/acks2")
check "the hospital fetches and verifies it" fetch region-hospital "$ack2" "$T/ack2"
check "... a fatal-error of the discharge's MessageHeader.id with the reason in its OperationOutcome" \
	ack_is "$T/ack2" fatal-error "$(header_id "$DIS")" 953741000016009 5790001348120 "wrong ward: please check the discharge"

# --- 5. cc destinations: routed under the policy, never twice, the unknown one recorded.
fresh "$ADMIT" "$T/cc-admit0.json"
$EDIT "$T/cc-admit0.json" "$T/cc-admit1.json" add-cc "$HOMECARE_CC"
$EDIT "$T/cc-admit1.json" "$T/cc-admit2.json" add-cc "$HOVMAND_CC"
$EDIT "$T/cc-admit2.json" "$T/cc-admit3.json" add-cc 5790000000005,999999999999999
$EDIT "$T/cc-admit3.json" "$T/cc-admit.json" add-cc "$VIS"
seal "$T/cc-admit.json" "$T/cc-admit.sealed"
code=$(post_sealed "$T/cc-admit.sealed")
check "an admission with four cc destinations: 201 ($code)" test "$code" = 201
cca=$(location_id)
check "copies: ringsted-visitation and hovmand-care, once each; none for ringsted-homecare" \
	test "$(copies_of "$cca")" = "hovmand-care ringsted-visitation "
as region-hospital -H 'Accept: application/json' "$URL/v1/messages/$cca" >/dev/null
check "the cc that the policy refuses is recorded with its rule (hospital-unassigned)" \
	grep -q '"event": *"cc_refused".*hospital-unassigned' "$T/body"
check "the cc that names no party is recorded" grep -q '"event": *"cc_unrouted".*no party has GLN 5790000000005' "$T/body"
check "the cc that is the primary gets no second copy, recorded" grep -q '"event": *"cc_skipped"' "$T/body"
check "the refusal is in the audit log" sh -c \
	"test \$(sqlite3 '$D/state/hegn.db' \"SELECT count(*) FROM audit WHERE message_id = '$cca' AND entry LIKE '%\\\"deny\\\"%'\") = 1"
# --- 6. A MedCom Acknowledgement as the answer goes on as its author signed it.
"$HEGN" -c "$D/hegn.conf" assign add --cpr $CPR --provider ringsted-homecare --services nursing \
	--from "$(date -u +%F)" >/dev/null
$EDIT "$EX/carecommunication-new.json" "$T/cc1.json" from-to "$VIS,${HOMECARE_CC}"
code=$(post_fhir ringsted-visitation "$T/cc1.json")
check "a CareCommunication from ringsted-visitation (fhir+json) to ringsted-homecare: 201 ($code)" test "$code" = 201
cc1=$(location_id)
$EDIT "$EX/acknowledgement-ok.json" "$T/hc-ack1.json" ack-for "$(header_id "$T/cc1.json")"
$EDIT "$T/hc-ack1.json" "$T/hc-ack2.json" ack-from "$HOMECARE_CC"
python3 -c 'import json,sys
b = json.load(open(sys.argv[1])); h = b["entry"][0]["resource"]
res = {e["resource"]["id"]: e["resource"] for e in b["entry"]}
rcv = res[h["destination"][0]["receiver"]["reference"].split("/")[-1]]
rcv["identifier"] = [{"system": "https://www.gs1.org/gln", "value": "5790001348120"},
                     {"system": "urn:oid:1.2.208.176.1.1", "value": "953741000016009"}]
h["destination"][0]["endpoint"] = "https://sor2.sum.dsdn.dk/#id=953741000016009"
json.dump(b, open(sys.argv[2], "w"))' "$T/hc-ack2.json" "$T/hc-ack.json"
openssl cms -sign -binary -nodetach -outform DER -md sha256 -in "$T/hc-ack.json" \
	-signer "$D/pki/ringsted-homecare.pem" -inkey "$D/pki/ringsted-homecare.key" \
	-certfile "$D/pki/chain.pem" -out "$T/hc-ack.der"
code=$(as ringsted-homecare -H 'Content-Type: application/pkcs7-mime' --data-binary @"$T/hc-ack.der" \
	"$URL/v1/messages/$cc1/receipt")
check "ringsted-homecare answers with its own signed MedCom Acknowledgement: 200 ($code)" test "$code" = 200
inbox_acks ringsted-visitation >"$T/acks3"
check "ringsted-visitation's inbox lists an Acknowledgement from ringsted-homecare" grep -q ' ringsted-homecare$' "$T/acks3"
ack3=$(cut -d' ' -f1 "$T/acks3")
check "... fetched and verified" fetch ringsted-visitation "$ack3" "$T/ack3"
check "... ringsted-homecare's own Acknowledgement, byte for byte" cmp -s "$T/ack3" "$T/hc-ack.json"
check "... with ringsted-homecare's signature" signer_is "$T/ack3.signer" ringsted-homecare
as ringsted-visitation -H 'Accept: application/json' "$URL/v1/messages/$cc1" >/dev/null
check "... and the sender's status shows it as hegn's receipt (accepted)" grep -q '"status": *"accepted"' "$T/body"
# An Acknowledgement naming another receiver than the sender is refused as a receipt.
$EDIT "$EX/carecommunication-new.json" "$T/cc2.json" from-to "$VIS,${HOMECARE_CC}"
$EDIT "$T/cc2.json" "$T/cc2b.json" new-header
$EDIT "$T/cc2b.json" "$T/cc2c.json" new-bundle
code=$(post_fhir ringsted-visitation "$T/cc2c.json")
cc2=$(location_id)
$EDIT "$EX/acknowledgement-ok.json" "$T/hc-bad1.json" ack-for "$(header_id "$T/cc2c.json")"
$EDIT "$T/hc-bad1.json" "$T/hc-bad.json" ack-from "$HOMECARE_CC"
openssl cms -sign -binary -nodetach -outform DER -md sha256 -in "$T/hc-bad.json" \
	-signer "$D/pki/ringsted-homecare.pem" -inkey "$D/pki/ringsted-homecare.key" -out "$T/hc-bad.der"
code=$(as ringsted-homecare -H 'Content-Type: application/pkcs7-mime' --data-binary @"$T/hc-bad.der" \
	"$URL/v1/messages/$cc2/receipt")
check "an Acknowledgement to the hospital for ringsted-visitation's letter: 400 ($code)" test "$code" = 400
check "... naming the receiver" grep -q 'destination.receiver' "$T/body"

# A cc the policy allows gets a copy, and its answer reaches the sender as an Acknowledgement.
fresh "$EX/carecommunication-new.json" "$T/cc-letter0.json"
$EDIT "$T/cc-letter0.json" "$T/cc-letter1.json" from-to "$VIS,${HOVMAND_CC}"
$EDIT "$T/cc-letter1.json" "$T/cc-letter.json" add-cc "$HOMECARE_CC"
code=$(post_fhir ringsted-visitation "$T/cc-letter.json")
check "a letter to hovmand-care with cc ringsted-homecare: 201 ($code)" test "$code" = 201
ccl=$(location_id)
check "... both get a copy" test "$(copies_of "$ccl")" = "hovmand-care ringsted-homecare "
check "... the cc fetches and verifies its copy" fetch ringsted-homecare "$ccl" "$T/ccl"
check "... hegn's care_update" grep -q '"kind":"care_update"' "$T/ccl"
n=$(acks)
code=$(receipt ringsted-homecare "$ccl" accepted)
check "the cc accepts: 200 ($code)" test "$code" = 200
check "... the sender gets one Acknowledgement more" test "$(acks)" = $((n + 1))
inbox_acks ringsted-visitation >"$T/acks4"
check "... from the cc, in its inbox" grep -q ' ringsted-homecare$' "$T/acks4"
ack4=$(sed -n 's/ ringsted-homecare$//p' "$T/acks4" | tail -n 1)
check "... fetched and verified" fetch ringsted-visitation "$ack4" "$T/ack4"
check "... signed with ringsted-homecare's key (hegn holds it)" signer_is "$T/ack4.signer" ringsted-homecare
code=$(receipt hovmand-care "$ccl" accepted)
check "the primary, hovmand-care (hegn does not hold its key), accepts: 200 ($code)" test "$code" = 200
inbox_acks ringsted-visitation >"$T/acks5"
ack5=$(sed -n 's/ hovmand-care$//p' "$T/acks5")
check "... an Acknowledgement from hovmand-care in the sender's inbox" test -n "$ack5"
check "... fetched and verified" fetch ringsted-visitation "$ack5" "$T/ack5"
check "... signed with the gateway's key" signer_is "$T/ack5.signer" gateway
check "... an ok Acknowledgement of the letter" grep -q "\"identifier\": *\"$(header_id "$T/cc-letter.json")\"" "$T/ack5"

# --- 7. A citizen known by an X-eCPR only.
fresh "$ADMIT" "$T/e1a.json"
$EDIT "$T/e1a.json" "$T/e1.json" ecpr $ECPR
seal "$T/e1.json" "$T/e1.sealed"
code=$(post_sealed "$T/e1.sealed")
check "an admission for an X-eCPR citizen: accepted, 201 ($code)" test "$code" = 201
check "... acknowledged ok" grep -q '"code": *"ok"' "$T/body"
check "... without the X-eCPR in the answer" sh -c "! grep -q $ECPR '$T/body'"
e1=$(location_id)
as region-hospital -H 'Accept: application/json' "$URL/v1/messages/$e1" >/dev/null
check "... no service for that citizen: recorded, delivered to nobody (as for a CPR)" grep -q '"event": *"withheld"' "$T/body"
check "staff assign the X-eCPR citizen to hovmand-care (hegn assign add --ecpr)" "$HEGN" -c "$D/hegn.conf" \
	assign add --ecpr $ECPR --provider hovmand-care --services practical_help --from "$(date -u +%F)"
"$HEGN" -c "$D/hegn.conf" assign list --ecpr $ECPR >"$T/elist.json"
check "hegn assign list --ecpr finds that assignment only, without the X-eCPR" sh -c \
	"grep -q hovmand-care '$T/elist.json' && ! grep -q ringsted-homecare '$T/elist.json' && ! grep -q $ECPR '$T/elist.json'"
check "an invalid X-eCPR is refused" sh -c "! '$HEGN' -c '$D/hegn.conf' assign add --ecpr abc --provider hovmand-care --services practical_help --from $(date -u +%F) 2>'$T/eerr'"
check "... without echoing it" sh -c "! grep -q abc '$T/eerr'"
fresh "$ADMIT" "$T/e2a.json"
$EDIT "$T/e2a.json" "$T/e2.json" ecpr $ECPR
seal "$T/e2.json" "$T/e2.sealed"
code=$(post_sealed "$T/e2.sealed")
check "another admission for the X-eCPR citizen: 201 ($code)" test "$code" = 201
e2=$(location_id)
check "... to ringsted-visitation and the assigned provider only" test "$(copies_of "$e2")" = "hovmand-care ringsted-visitation "
check "hovmand-care fetches and verifies its copy" fetch hovmand-care "$e2" "$T/e2.hegn"
check "... hegn's admission_notice with citizen.ecpr" grep -q "\"citizen\":{\"ecpr\":\"$ECPR\"" "$T/e2.hegn"
check "the visitation office fetches it too" fetch ringsted-visitation "$e2" "$T/e2.vis"
fresh "$EX/carecommunication-new.json" "$T/e3a.json"
$EDIT "$T/e3a.json" "$T/e3.json" ecpr $ECPR
seal "$T/e3.json" "$T/e3.sealed"
code=$(post_sealed "$T/e3.sealed")
check "a hospital's letter about the X-eCPR citizen to the municipality: 201 ($code)" test "$code" = 201
e3=$(location_id)
check "... delivered to ringsted-visitation" test "$(copies_of "$e3")" = "ringsted-visitation "
check "the X-eCPR is in no log line" sh -c "! grep -q $ECPR '$T/hegnd.log'"
check "... no audit entry, event or assignment row" test "$(sqlite3 "$D/state/hegn.db" \
	"SELECT (SELECT count(*) FROM audit WHERE entry LIKE '%$ECPR%') + (SELECT count(*) FROM events WHERE detail LIKE '%$ECPR%') + (SELECT count(*) FROM assignments WHERE citizen_ref LIKE '%$ECPR%')")" = 0

# --- 8. Other channels: an Acknowledgement is pushed once, never resent, never faxed.
setkey() { # setkey SECTION KEY VALUE in hegn.conf
	awk -v s="[$1]" -v k="$2" -v v="$3" '
		/^\[/ { if (insec && !done) { print k " = " v; done = 1 } insec = ($0 == s) }
		insec && $0 ~ ("^" k " *=") { if (!done) { print k " = " v; done = 1 } next }
		{ print }
		END { if (insec && !done) print k " = " v }' "$D/hegn.conf" >"$T/conf.new" &&
	cat "$T/conf.new" >"$D/hegn.conf"
}
stop_hegnd() {
	[ -f "$D/run/hegnd.pid" ] || return 0
	kill "$(cat "$D/run/hegnd.pid")"
	for _ in $(seq 1 100); do [ -f "$D/run/hegnd.pid" ] || break; sleep 0.1; done
	[ ! -f "$D/run/hegnd.pid" ]
}
restart_hegnd() { stop_hegnd && "$HEGND" -c "$D/hegn.conf" -D 2>>"$T/hegnd.log"; }
# One delivery scheduler per store: `hegn deliver` runs while hegnd is stopped.
deliver_at() { "$HEGN" -c "$D/hegn.conf" deliver --now "$(date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ)" >/dev/null 2>>"$T/deliver.log"; }
ack_state() { sqlite3 -cmd '.timeout 10000' "$D/state/hegn.db" "SELECT state || ' ' || channel FROM deliveries WHERE message_id = '$1'"; }
# answered_ack EXAMPLE: a new admission, accepted by ringsted-visitation; prints the Acknowledgement's id.
answered_ack() {
	fresh "$ADMIT" "$T/ch.json" && seal "$T/ch.json" "$T/ch.sealed" &&
	[ "$(post_sealed "$T/ch.sealed")" = 201 ] || return 1
	local id
	id=$(location_id)
	[ "$(receipt ringsted-visitation "$id" accepted)" = 200 ] || return 1
	sqlite3 -cmd '.timeout 10000' "$D/state/hegn.db" "SELECT substr(detail, length(detail) - 35) FROM events WHERE message_id = '$id' AND event = 'medcom_ack'"
}
mkdir -p "$T/push"
rm -f "$T/push.port"
python3 "$(dirname "$0")/push_receiver.py" --cert "$D/pki/gateway-fullchain.pem" \
	--key "$D/pki/gateway.key" --ca "$D/pki/ca.pem" --dir "$T/push" --port-file "$T/push.port" &
PUSH_PID=$!
trap 'kill $PUSH_PID 2>/dev/null || true; cleanup' EXIT
for _ in $(seq 1 100); do [ -s "$T/push.port" ] && break; sleep 0.1; done
setkey "party region-hospital" delivery "push,pull"
setkey "party region-hospital" push_url "https://127.0.0.1:$(cat "$T/push.port")/ok"
check "hegnd restarts with region-hospital on push" restart_hegnd
pack=$(answered_ack)
check "an Acknowledgement for the push party" test -n "$pack"
check "hegn deliver refuses while hegnd runs its scheduler" sh -c \
	"! '$HEGN' -c '$D/hegn.conf' deliver >/dev/null 2>'$T/busy.txt' && grep -q 'hegn.db-scheduler is locked' '$T/busy.txt'"
# hegnd's own scheduler may push it before it stops; either way it is pushed once.
check "hegnd stops" stop_hegnd
# A second on: --now takes whole seconds, and the copy was due at its creation's millisecond.
now=$(($(date +%s) + 1))
deliver_at "$now"
for _ in $(seq 1 100); do [ -s "$T/push/1.body" ] && break; sleep 0.1; done
check "... is pushed" test -s "$T/push/1.body"
check "... decrypts and verifies as an ok Acknowledgement of that letter" sh -c \
	"openssl cms -decrypt -inform DER -in '$T/push/1.body' -recip '$D/pki/region-hospital.pem' -inkey '$D/pki/region-hospital.key' -out '$T/p.signed' 2>/dev/null &&
	 openssl cms -verify -inform DER -in '$T/p.signed' -CAfile '$D/pki/ca.pem' -purpose any -out '$T/p.json' 2>/dev/null &&
	 grep -q '\"identifier\": *\"$(header_id "$T/ch.json")\"' '$T/p.json'"
check "... its copy is complete once handed over" test "$(ack_state "$pack")" = "acknowledged push"
deliver_at $((now + 7200))
deliver_at $((now + 14400))
check "... and never resent (one POST after two resend periods)" test "$(find "$T/push" -name '*.body' | wc -l)" = 1
setkey "party region-hospital" delivery "fax"
check "hegnd restarts with region-hospital on fax only" restart_hegnd
fack=$(answered_ack)
check "an Acknowledgement for a fax-only party" test -n "$fack"
check "hegnd stops" stop_hegnd
deliver_at $(($(date +%s) + 1))
for _ in $(seq 1 100); do [ "$(ack_state "$fack")" = "failed fax" ] && break; sleep 0.1; done
check "... is not faxed: its copy fails" test "$(ack_state "$fack")" = "failed fax"
check "... saying why" test "$(sqlite3 -cmd '.timeout 10000' "$D/state/hegn.db" \
	"SELECT count(*) FROM events WHERE message_id = '$fack' AND event = 'failed' AND detail LIKE '%not sent on paper%'")" = 1
check "... and nothing of it went to the fax folder" sh -c "! ls '$D/fax-out' 2>/dev/null | grep -q '$fack'"

check "the audit log verifies" "$HEGN" -c "$D/hegn.conf" audit verify
check "no sanitizer reports from hegnd" no_sanitizer_reports
finish

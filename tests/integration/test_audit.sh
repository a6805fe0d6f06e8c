#!/usr/bin/env bash
# The audit log (issue 4) against a real hegnd: a few flows, a clean stop
# (which writes a checkpoint), then the auditor's tools: verify, query by
# CPR, export and offline verification, and tampering found.
. "$(dirname "$0")/lib.sh"

A=2509479989   # the demo's citizen
start_demo
CONF="$D/hegn.conf"
hegn() { "$HEGN" -c "$CONF" "$@"; }
jqq() { jq "$@" >/dev/null; }
audit_rows() { sqlite3 "$D/state/hegn.db" "SELECT count(*) FROM audit WHERE $1"; }

# 1. Flows: a send, a fetch, a receipt, a denied fetch, a denied send.
code=$(as ringsted-visitation -H 'Content-Type: application/json' \
	--data-binary @"$D/examples/referral.json" "$URL/v1/messages")
check "referral submitted: 201" test "$code" = 201
id=$(json_field id)
code=$(as ringsted-homecare -H 'Accept: application/pkcs7-mime' "$URL/v1/messages/$id")
check "a provider the message is not for asks for it: 404" test "$code" = 404
code=$(as hovmand-care -H 'Accept: application/pkcs7-mime' "$URL/v1/messages/$id")
cp "$T/body" "$T/sealed.der"
check "hovmand-care fetches it: 200" test "$code" = 200
sha=$(sha256sum "$T/sealed.der" | cut -d' ' -f1)
printf '{"message_id":"%s","sha256":"%s","status":"accepted"}' "$id" "$sha" >"$T/receipt.json"
openssl cms -sign -binary -nodetach -outform DER -md sha256 -in "$T/receipt.json" \
	-signer "$D/pki/hovmand-care.pem" -inkey "$D/pki/hovmand-care.key" \
	-keyopt rsa_padding_mode:pss -keyopt rsa_pss_saltlen:32 -out "$T/receipt.der"
code=$(as hovmand-care -H 'Content-Type: application/pkcs7-mime' --data-binary @"$T/receipt.der" \
	"$URL/v1/messages/$id/receipt")
check "hovmand-care's signed receipt: 200" test "$code" = 200
# ringsted-homecare serves nobody, so it may not write about the citizen.
openssl cms -sign -binary -nodetach -outform DER -md sha256 -in "$D/examples/observation.json" \
	-signer "$D/pki/ringsted-homecare.pem" -inkey "$D/pki/ringsted-homecare.key" -out "$T/obs.signed"
openssl cms -encrypt -binary -inform DER -outform DER -aes-256-gcm -in "$T/obs.signed" \
	-recip "$D/pki/gateway.pem" -out "$T/obs.sealed"
code=$(anon -H 'Content-Type: application/pkcs7-mime' --data-binary @"$T/obs.sealed" "$URL/v1/messages")
check "an unassigned provider's observation: 403" test "$code" = 403

# 1b. The auditor's query beside a running hegnd, in a process of its own: it
# syncs what it sees before it reads (docs/store.md, "Beside hegnd").
hegn audit query --cpr "$A" >"$T/beside.json" 2>"$T/beside.err" && r=0 || r=$?
check "hegn audit query beside a running hegnd: exit 0" test "$r" = 0
check "... lists hovmand-care's receipt, just written" \
	jqq -e --arg id "$id" '[.entries[] | select(.action == "message.receipt" and .message == $id)] | length == 1' "$T/beside.json"
hegn audit query --cpr "$A" --from yesterday >"$T/from.txt" 2>&1 && r=0 || r=$?
check "a --from that is not an RFC 3339 time: exit 2" test "$r" = 2
check "... saying what --from takes" grep -q 'RFC 3339' "$T/from.txt"
"$HEGN" policy show >"$T/noconf.txt" 2>&1 && r=0 || r=$?
check "hegn policy show without -c: exit 2, the usage" sh -c "[ $r = 2 ] && grep -q '^usage:' '$T/noconf.txt'"

# 2. A clean stop writes gateway.stop and a checkpoint.
pid=$(cat "$D/run/hegnd.pid")
kill -TERM "$pid"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
check "hegnd stops on SIGTERM" sh -c "! kill -0 $pid 2>/dev/null"
check "an audit entry for gateway.start" test "$(audit_rows "action = 'gateway.start'")" -ge 1
check "an audit entry for gateway.stop" test "$(audit_rows "action = 'gateway.stop'")" -ge 1
check "a checkpoint was written" test "$(rows checkpoints)" -ge 1
last=$(sqlite3 "$D/state/hegn.db" "SELECT max(seq) + 1 FROM audit")
check "the last checkpoint covers every entry, gateway.stop included" \
	test "$(sqlite3 "$D/state/hegn.db" "SELECT max(size) FROM checkpoints")" = "$last"

# 3. hegn audit verify.
hegn audit verify >"$T/verify.txt" 2>&1 && r=0 || r=$?
check "hegn audit verify: exit 0" test "$r" = 0
check "... says verified" grep -q 'verified' "$T/verify.txt"

# 4. hegn audit query --cpr.
hegn audit query --cpr "$A" >"$T/query.json" 2>"$T/query.err" && r=0 || r=$?
check "hegn audit query --cpr: exit 0" test "$r" = 0
check "... valid JSON" jqq -e '.entries | length > 0' "$T/query.json"
check "... lists the fetch" \
	jqq -e --arg id "$id" '[.entries[] | select(.action == "message.fetch" and .message == $id and .actor == "hovmand-care" and .outcome == "allow")] | length == 1' "$T/query.json"
check "... with its rule id (fetch-case)" \
	jqq -e --arg id "$id" '[.entries[] | select(.action == "message.fetch" and .actor == "hovmand-care" and .rule == "fetch-case")] | length == 1' "$T/query.json"
check "... the fetch names the client certificate (issue 4: party, user, certificate fingerprint)" \
	jqq -e '[.entries[] | select(.action == "message.fetch" and .actor == "hovmand-care" and (.cert | length > 0))] | length == 1' "$T/query.json"
check "... lists the denied fetch by ringsted-homecare" \
	jqq -e --arg id "$id" '[.entries[] | select(.action == "message.fetch" and .message == $id and .actor == "ringsted-homecare" and .outcome == "deny")] | length == 1' "$T/query.json"
check "... with its rule id" \
	jqq -e '[.entries[] | select(.action == "message.fetch" and .actor == "ringsted-homecare" and .outcome == "deny" and (.rule | length > 0))] | length == 1' "$T/query.json"
check "... lists the denied observation with its rule (provider-unassigned)" \
	jqq -e '[.entries[] | select(.action == "message.submit" and .actor == "ringsted-homecare" and .outcome == "deny" and .rule == "provider-unassigned")] | length == 1' "$T/query.json"
check "... lists the submission with its rule (refer)" \
	jqq -e --arg id "$id" '[.entries[] | select(.action == "message.submit" and .message == $id and .outcome == "allow" and .rule == "refer")] | length == 1' "$T/query.json"
check "... and the receipt" \
	jqq -e --arg id "$id" '[.entries[] | select(.action == "message.receipt" and .message == $id)] | length == 1' "$T/query.json"
check "... every entry has a time" jqq -e '[.entries[] | select(.time | type != "string")] | length == 0' "$T/query.json"
check "... keys the citizen by a hash" jqq -e '.citizen | test("^[0-9a-f]{64}$")' "$T/query.json"
check "... the output does not contain the CPR" sh -c "! grep -q '$A\|250947-9989' '$T/query.json' '$T/query.err'"
hegn audit query --cpr 0101401234 >"$T/query2.json" && r=0 || r=$?
check "a query for another citizen lists none of these" \
	sh -c "[ $r = 0 ] && jq -e --arg id '$id' '[.entries[] | select(.message == \$id)] | length == 0' '$T/query2.json' >/dev/null"
hegn audit query --cpr 3102479989 >"$T/query3.json" 2>&1 && r=0 || r=$?
check "a query with an impossible CPR fails" test "$r" != 0
check "... without repeating it" sh -c "! grep -q 3102479989 '$T/query3.json'"
check "the audit log holds no CPR (entries are keyed by hash)" \
	sh -c "! sqlite3 '$D/state/hegn.db' 'SELECT entry FROM audit' | grep -q '$A'"

# 5. Export and offline verification with only the public key.
# Proofs an auditor checks with a signed checkpoint alone (RFC 9162).
size=$(sqlite3 "$D/state/hegn.db" "SELECT max(size) FROM checkpoints")
hegn audit prove --seq 0 >"$T/prove.json" 2>&1 && r=0 || r=$?
check "hegn audit prove --seq 0: exit 0" test "$r" = 0
check "... names the tree size of the latest checkpoint" grep -q "\"tree_size\": $size" "$T/prove.json"
check "... carries the proof and the signed note" sh -c "grep -q '\"proof\"' '$T/prove.json' && grep -q '\"checkpoint\"' '$T/prove.json'"
hegn audit prove --seq "$size" >"$T/prove2.txt" 2>&1 && r=0 || r=$?
check "an entry no checkpoint covers yet: non-zero" test "$r" != 0
first=$(sqlite3 "$D/state/hegn.db" "SELECT min(size) FROM checkpoints WHERE size > 0")
hegn audit prove --old-size "$first" >"$T/cons.json" 2>&1 && r=0 || r=$?
check "hegn audit prove --old-size (consistency to the latest): exit 0" test "$r" = 0
check "... from that size to the latest" sh -c "grep -q '\"old_size\": $first' '$T/cons.json' && grep -q '\"new_size\": $size' '$T/cons.json'"
hegn audit prove --old-size 999999 >/dev/null 2>&1 && r=0 || r=$?
check "no checkpoint at that size: non-zero" test "$r" != 0

hegn audit export --out "$T/audit.export" 2>&1 && r=0 || r=$?
check "hegn audit export --out: exit 0" test "$r" = 0
check "... holds entries and a checkpoint" \
	sh -c "grep -q '\"type\": *\"entry\"' '$T/audit.export' && grep -q '\"type\": *\"checkpoint\"' '$T/audit.export'"
check "... and no CPR" sh -c "! grep -q '$A' '$T/audit.export'"
mkdir "$T/elsewhere"
cp "$T/audit.export" "$D/audit.pub" "$T/elsewhere/"
(cd "$T/elsewhere" && "$HEGN" audit verify --export audit.export --pubkey audit.pub) >"$T/off.txt" 2>&1 && r=0 || r=$?
check "hegn audit verify --export --pubkey (no configuration) in another folder: exit 0" test "$r" = 0
# Change one character inside an entry's text in the copy.
sed '0,/"action": *"message.fetch"/s/hovmand-care/hovmand-cafe/' "$T/elsewhere/audit.export" >"$T/elsewhere/bad.export"
check "(the copy was changed)" sh -c "! cmp -s '$T/elsewhere/audit.export' '$T/elsewhere/bad.export'"
(cd "$T/elsewhere" && "$HEGN" audit verify --export bad.export --pubkey audit.pub) >"$T/off2.txt" 2>&1 && r=0 || r=$?
check "an edited export fails offline verification" test "$r" != 0
"$HEGN" demo init "$T/other" --port 1 >/dev/null
(cd "$T/elsewhere" && "$HEGN" audit verify --export audit.export --pubkey "$T/other/audit.pub") >"$T/off3.txt" 2>&1 && r=0 || r=$?
check "an export checked with another gateway's key fails" test "$r" != 0

# 6. Tampering with the database: drop the append-only triggers, edit one entry.
fseq=$(sqlite3 "$D/state/hegn.db" "SELECT seq FROM audit WHERE action = 'message.fetch' AND actor = 'hovmand-care' ORDER BY seq LIMIT 1")
check "the fetch's entry is found" test -n "$fseq"
sqlite3 "$D/state/hegn.db" "UPDATE audit SET entry = replace(entry, 'fetch-case', 'fetch-cas3') WHERE seq = $fseq" 2>/dev/null && r=0 || r=$?
check "with the triggers in place the UPDATE is refused" test "$r" != 0
trig=$(sqlite3 "$D/state/hegn.db" "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit'")
check "the audit table has triggers" test -n "$trig"
for t in $trig; do sqlite3 "$D/state/hegn.db" "DROP TRIGGER $t"; done
sqlite3 "$D/state/hegn.db" "UPDATE audit SET entry = replace(entry, 'fetch-case', 'fetch-cas3') WHERE seq = $fseq"
check "(the entry was changed)" test "$(audit_rows "seq = $fseq AND entry LIKE '%fetch-cas3%'")" = 1
hegn audit verify >"$T/verify2.txt" 2>&1 && r=0 || r=$?
check "hegn audit verify now exits non-zero" test "$r" != 0
check "... naming the entry ($fseq)" grep -q "entry $fseq\b" "$T/verify2.txt"

# 7. Privacy of the daemon's log.
check "the daemon's log contains no CPR" sh -c "! grep -q '$A\|250947-9989' '$T/hegnd.log'"
check "the daemon's log has no sanitizer report" no_sanitizer_reports

finish

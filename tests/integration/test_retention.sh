#!/usr/bin/env bash
# Retention ([audit] retention_days): hegnd deletes the content of messages
# older than the period (the signed copy and the sealed copies) and keeps
# their rows, digests, states and events as evidence.  It works in batches of
# 500 messages, each its own transaction with its own audit entry, from where
# the last one stopped (docs/store.md, "Retention").
. "$(dirname "$0")/lib.sh"

start_demo
CONF="$D/hegn.conf"
DAY=86400000
db() { sqlite3 -cmd '.timeout 10000' "$D/state/hegn.db" "$1"; }
stop_hegnd() {
	kill "$(cat "$D/run/hegnd.pid")"
	for _ in $(seq 1 100); do [ -f "$D/run/hegnd.pid" ] || break; sleep 0.1; done
	[ ! -f "$D/run/hegnd.pid" ]
}
submit() { # submit: a referral from ringsted-visitation; prints its id
	[ "$(as ringsted-visitation -H 'Content-Type: application/json' \
		--data-binary @"$D/examples/referral.json" "$URL/v1/messages")" = 201 ] && json_field id
}
purges() { db "SELECT count(*) FROM audit WHERE action = 'retention.purge'"; }

old=$(submit)
check "an old referral: submitted" test -n "$old"
new=$(submit)
check "a new referral: submitted" test -n "$new"
check "hegnd stops" stop_hegnd

# The first one and 1,100 copies of its rows (a copy for hovmand-care each),
# as if submitted 40 days ago; the second stays new.
db "UPDATE messages SET created_ms = created_ms - 40 * $DAY WHERE id = '$old'"
db "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1100)
    INSERT INTO messages (id, sender, kind, content_sha256, citizen_ref, created_ms, deadline_ms,
        signed_der)
    SELECT 'old-' || i, sender, kind, content_sha256, citizen_ref, created_ms - i, deadline_ms,
        signed_der FROM messages, n WHERE id = '$old';
    INSERT INTO deliveries (message_id, recipient, state, channel, seq, updated_ms, sealed_sha256)
    SELECT m.id, d.recipient, d.state, d.channel, 1000000 + CAST(substr(m.id, 5) AS INTEGER),
        d.updated_ms, d.sealed_sha256
    FROM messages AS m, deliveries AS d WHERE m.id LIKE 'old-%' AND d.message_id = '$old';
    INSERT INTO sealed_copies (seq, sealed)
    SELECT d.seq, s.sealed FROM deliveries AS d, sealed_copies AS s, deliveries AS o
    WHERE d.seq >= 1000000 AND o.message_id = '$old' AND s.seq = o.seq;"
check "1,101 old messages with content" \
	test "$(db "SELECT count(*) FROM messages WHERE signed_der IS NOT NULL AND id <> '$new'")" = 1101
check "... and their sealed copies" test "$(db "SELECT count(*) FROM sealed_copies AS s JOIN deliveries AS d
	ON d.seq = s.seq WHERE d.message_id <> '$new'")" -ge 1101
sed -i 's/^retention_days = 0$/retention_days = 30/' "$CONF"
check "(retention set to 30 days)" grep -q '^retention_days = 30$' "$CONF"

"$HEGND" -c "$CONF" -D 2>>"$T/hegnd.log"
for _ in $(seq 1 100); do [ "$(purges)" -ge 3 ] && break; sleep 0.1; done
check "hegnd purges in three batches, each audited (500, 500, 101)" test "$(purges)" = 3
check "... the audit entries say how many" test "$(db "SELECT group_concat(substr(entry,
	instr(entry, 'content of ') + 11, 3), ',') FROM (SELECT entry FROM audit
	WHERE action = 'retention.purge' ORDER BY seq)")" = "500,500,101"
check "no old message keeps its signed copy" \
	test "$(db "SELECT count(*) FROM messages WHERE signed_der IS NOT NULL AND id <> '$new'")" = 0
check "... nor a sealed copy" test "$(db "SELECT count(*) FROM sealed_copies AS s JOIN deliveries AS d
	ON d.seq = s.seq WHERE d.message_id <> '$new'")" = 0
check "the rows stay, with their digests" test "$(db "SELECT count(*) FROM deliveries
	WHERE message_id <> '$new' AND length(sealed_sha256) = 64")" -ge 1101
check "the new message keeps its content" \
	test "$(db "SELECT length(signed_der) > 0 FROM messages WHERE id = '$new'")" = 1
check "... and its sealed copy" test "$(db "SELECT count(*) FROM sealed_copies AS s JOIN deliveries AS d
	ON d.seq = s.seq WHERE d.message_id = '$new'")" -ge 1
check "the store keeps where retention stopped" \
	test "$(db "SELECT count(*) FROM counters WHERE name = 'purged_before_ms'")" = 1
check "... and say that the copies nobody fetched failed" test "$(db "SELECT count(*) FROM audit
	WHERE action = 'retention.purge' AND entry LIKE '%copies not delivered failed%'")" = 3
# Never fetched, without content: out of the inbox, failed, and the log says why.
check "the old copies, never fetched, failed" test "$(db "SELECT count(*) FROM deliveries
	WHERE message_id <> '$new' AND state = 'failed' AND next_ms = 0
	AND fallback_reason LIKE '%deleted under retention%'")" -ge 1101
check "... each with a failed event" test "$(db "SELECT count(*) FROM events WHERE event = 'failed'
	AND actor = 'gateway' AND detail LIKE '%deleted under retention%'")" -ge 1101
check "... the new copy did not" test "$(db "SELECT count(*) FROM deliveries WHERE message_id = '$new'
	AND state = 'failed'")" = 0
code=$(as hovmand-care "$URL/v1/inbox")
check "hovmand-care's inbox answers ($code)" test "$code" = 200
check "... with the new message" body_has "$new"
check "... and no purged one" body_lacks "$old"
check "... of 1,100 either" body_lacks '"old-'
check "hegnd's log counts the failed copies" grep -q 'retention: 500 copies never delivered failed' "$T/hegnd.log"
check "... naming none" sh -c "! grep retention '$T/hegnd.log' | grep -q 'old-\\|$old'"
code=$(as hovmand-care -H 'Accept: application/pkcs7-mime' "$URL/v1/messages/$old")
check "a purged copy is gone: 404, not a gateway fault ($code)" test "$code" = 404
check "... saying why" body_has 'deleted under retention'
check "... and the failed fetch left no fetch entry" \
	test "$(db "SELECT count(*) FROM audit WHERE action = 'message.fetch' AND message_id = '$old'")" = 0
code=$(as hovmand-care -H 'Accept: application/pkcs7-mime' "$URL/v1/messages/$new")
check "the new one is: 200" test "$code" = 200
check "hegnd still takes submissions" test -n "$(submit)"
check "the audit log verifies" "$HEGN" -c "$CONF" audit verify
check "no sanitizer reports from hegnd" no_sanitizer_reports
finish

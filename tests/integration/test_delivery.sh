#!/usr/bin/env bash
# Delivery channels, the scheduler and the fallback measure (issue 5) against
# real peers on loopback: an HTTPS receiver with mutual TLS (push), an SMTP
# server with STARTTLS (smime-mail, python3-aiosmtpd), the demo's fax command
# (a PDF checked with pdftotext), and the scheduler driven by a controllable
# clock: `hegn deliver --now T`, one pass per process, with hegnd stopped so
# that its own real-clock passes cannot interfere.  Every pass is a separate
# process and hegnd is restarted between steps: the schedule lives in the
# database.
. "$(dirname "$0")/lib.sh"

SRC=${HEGN_TOP_SRCDIR:-}
[ -n "$SRC" ] || SRC=$(cd "$(dirname "$0")/../.." && pwd)
PY=/usr/bin/python3
for tool in jq pdftotext sqlite3; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed"; exit 77; }
done
if ! "$PY" -c 'import aiosmtpd' 2>/dev/null; then
	echo "SKIP: $PY lacks aiosmtpd (python3-aiosmtpd)"
	exit 77
fi

CONF="$D/hegn.conf"
PUSH_PID=
PUSH_PORT=0
SMTP_PID=

stop_pid() {
	if [ -n "$1" ]; then
		kill "$1" 2>/dev/null || true
		wait "$1" 2>/dev/null || true
	fi
}
stop_push() { stop_pid "$PUSH_PID"; PUSH_PID=; }
stop_peers() {
	stop_push
	stop_pid "$SMTP_PID"
	SMTP_PID=
}
trap 'stop_peers; cleanup' EXIT

# Set KEY = VALUE in [SECTION] of hegn.conf, replacing it or adding it.
setkey() {
	awk -v s="[$1]" -v k="$2" -v v="$3" '
		/^\[/ { if (insec && !done) { print k " = " v; done = 1 } insec = ($0 == s) }
		insec && $0 ~ ("^" k " *=") { if (!done) { print k " = " v; done = 1 } next }
		{ print }
		END { if (insec && !done) print k " = " v }' "$CONF" >"$CONF.new"
	mv "$CONF.new" "$CONF"
}

# Poll (up to 20 s) until the command succeeds.
wait_for() {
	local i
	for i in $(seq 1 200); do
		if "$@"; then return 0; fi
		sleep 0.1
	done
	return 1
}

start_hegnd() {
	"$HEGND" -c "$CONF" -D 2>>"$T/hegnd.log" || { echo "cannot start hegnd"; cat "$T/hegnd.log"; exit 1; }
}
stop_hegnd() {
	[ -f "$D/run/hegnd.pid" ] || return 0
	kill "$(cat "$D/run/hegnd.pid")" 2>/dev/null || true
	wait_for test ! -f "$D/run/hegnd.pid" || { echo "hegnd did not stop"; exit 1; }
}

# The push receiver: the gateway's own certificate (127.0.0.1, from the demo
# CA) serves as the party's TLS endpoint; receipts are signed as ringsted-homecare.
start_push() { # start_push DIR: a fresh receiver numbers its files from 1
	PUSH_DIR=$1
	mkdir -p "$PUSH_DIR"
	rm -f "$T/push.port"
	"$PY" "$SRC/tests/integration/push_receiver.py" --cert "$D/pki/gateway-fullchain.pem" \
		--key "$D/pki/gateway.key" --ca "$D/pki/ca.pem" --dir "$PUSH_DIR" \
		--port-file "$T/push.port" --port "$PUSH_PORT" \
		--sign-cert "$D/pki/ringsted-homecare.pem" --sign-key "$D/pki/ringsted-homecare.key" &
	PUSH_PID=$!
	wait_for test -s "$T/push.port" || { echo "push receiver did not start"; exit 1; }
	PUSH_PORT=$(cat "$T/push.port")
}
start_smtp() {
	rm -f "$T/smtp.port"
	"$PY" "$SRC/tests/integration/smtp_receiver.py" --cert "$D/pki/gateway-fullchain.pem" \
		--key "$D/pki/gateway.key" --dir "$T/smtp" --port-file "$T/smtp.port" &
	SMTP_PID=$!
	wait_for test -s "$T/smtp.port" || { echo "smtp receiver did not start"; exit 1; }
	SMTP_PORT=$(cat "$T/smtp.port")
}

at() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }
# One scheduler pass at time $1 (epoch seconds), as its own process; prints "N copies handled".
deliver_at() {
	"$HEGN" -c "$CONF" deliver --now "$(at "$1")" 2>>"$T/deliver.log" || echo "deliver failed"
}
# hegnd checkpoints the WAL as it closes: wait for the lock rather than fail.
db() { sqlite3 -cmd '.timeout 10000' "$D/state/hegn.db" "$1"; }
col() { db "SELECT $2 FROM deliveries WHERE message_id = '$1'"; }
nevents() { db "SELECT count(*) FROM events WHERE message_id = '$1' AND event = '$2'"; }
status_json() { "$HEGN" -c "$CONF" status "$1" --json >"$T/st.json"; }
st() { jq -r "$1" "$T/st.json"; }
has_event() { # has_event ID EVENT: the status JSON lists it
	status_json "$1" && [ "$(jq --arg e "$2" '[.events[] | select(.event == $e)] | length' "$T/st.json")" -gt 0 ]
}
quiet() { "$@" >/dev/null 2>&1; }
nfiles() { find "$1" -maxdepth 1 -name "*.$2" | wc -l; }

submit_to() { # submit_to PARTY: a referral from ringsted-visitation; prints the id
	jq --arg to "$1" '.to = $to' "$D/examples/referral.json" >"$T/ref.json"
	local code
	code=$(as ringsted-visitation -H 'Content-Type: application/json' \
		--data-binary @"$T/ref.json" "$URL/v1/messages")
	[ "$code" = 201 ] || { echo "submission to $1 answered $code: $(cat "$T/body")" >&2; return 0; }
	json_field id
}
sign_receipt() { # sign_receipt ID SHA STATUS PARTY OUT
	if [ "$3" = rejected ]; then
		printf '{"message_id":"%s","sha256":"%s","status":"rejected","reason":"ukendt borger"}' \
			"$1" "$2" >"$T/rcpt.json"
	else
		printf '{"message_id":"%s","sha256":"%s","status":"%s"}' "$1" "$2" "$3" >"$T/rcpt.json"
	fi
	openssl cms -sign -binary -nodetach -outform DER -md sha256 -in "$T/rcpt.json" \
		-signer "$D/pki/$4.pem" -inkey "$D/pki/$4.key" \
		-keyopt rsa_padding_mode:pss -keyopt rsa_pss_saltlen:32 -out "$5"
}

# The demo world, configured for the channels.
mkdir -p "$T/smtp"
PORT=$(( (RANDOM % 20000) + 30000 + ($$ % 1000) ))
"$HEGN" demo init "$D" --port "$PORT" >/dev/null
start_push "$T/push"
start_smtp
setkey delivery smtp_url "smtp://127.0.0.1:$SMTP_PORT"
setkey delivery mail_from "hegn@ringsted.test"
setkey delivery resend_after 1800
setkey delivery max_resends 2
# Long enough that hegnd's real-clock passes never retry while the test runs.
setkey delivery retry_base 300
setkey delivery retry_max 3600
setkey delivery deadline_referral 10800
setkey delivery deadline_cancellation 5400
setkey "party ringsted-homecare" delivery "push,smime-mail,fax"
setkey "party ringsted-homecare" push_url "https://127.0.0.1:$PUSH_PORT/receipt"
setkey "party ringsted-homecare" mail "hjemmeplejen@ringsted.test"
setkey "party ringsted-homecare" fax "+4557670000"
check "hegnd -t accepts the configured channels" "$HEGND" -t -c "$CONF"
tries=0
until "$HEGND" -c "$CONF" -D 2>>"$T/hegnd.log"; do
	tries=$((tries + 1))
	[ $tries -lt 5 ] || { echo "cannot start hegnd"; cat "$T/hegnd.log"; exit 1; }
	PORT=$(( (RANDOM % 20000) + 30000 + ($$ % 1000) ))
	setkey server port "$PORT"
done
URL="https://127.0.0.1:$PORT"

##############################################################################
# 1. push: hegnd hands the sealed copy over at once; the receipt in the
#    response acknowledges it.
id_a=$(submit_to ringsted-homecare)
check "push: referral to ringsted-homecare accepted" test -n "$id_a"
check "push: the copy is acknowledged by the receipt in the response" \
	wait_for has_event "$id_a" acknowledged
status_json "$id_a"
check "push: status acknowledged" test "$(st .state)" = acknowledged
check "push: the channel is push" test "$(st '.deliveries[0].channel')" = push
check "push: the receiver got one POST" test "$(nfiles "$T/push" body)" = 1
check "push: the body is the sealed copy, byte for byte (SHA-256)" \
	test "$(sha256sum "$T/push/1.body" | cut -d' ' -f1)" = "$(st '.deliveries[0].sealed_sha256')"
check "push: hegn presented its client certificate" grep -q 'hegn gateway' "$T/push/1.peer"
check "push: X-Hegn-Message-Id names the message" grep -qi "^X-Hegn-Message-Id: $id_a" "$T/push/1.headers"
check "push: X-Hegn-Kind names the kind" grep -qi '^X-Hegn-Kind: referral' "$T/push/1.headers"
check "push: the body decrypts with the party's key (stock openssl cms)" \
	openssl cms -decrypt -inform DER -in "$T/push/1.body" -recip "$D/pki/ringsted-homecare.pem" \
	-inkey "$D/pki/ringsted-homecare.key" -out "$T/a.signed"
check "push: ... and verifies as ringsted-visitation's referral" \
	quiet openssl cms -verify -inform DER -in "$T/a.signed" -CAfile "$D/pki/ca.pem" -out "$T/a.json"
check "push: the payload is the referral" grep -q '"kind":"referral"' "$T/a.json"
check "push: the delivered event names the channel" \
	sh -c "jq -r '.events[] | select(.event == \"delivered\") | .detail' '$T/st.json' | grep -q '^delivered by push: HTTP 202'"
check "push: the acknowledged copy is due no more" test "$(col "$id_a" next_ms)" = 0
stop_hegnd

##############################################################################
# 2. retry: the endpoint is down; a retry with backoff, then success.
setkey "party ringsted-homecare" push_url "https://127.0.0.1:$PUSH_PORT/ok"
stop_push
start_hegnd
id_b=$(submit_to ringsted-homecare)
check "retry: referral submitted while the endpoint is down" test -n "$id_b"
check "retry: hegnd records a retry" wait_for has_event "$id_b" retry
stop_hegnd
check "retry: one attempt" test "$(col "$id_b" attempts)" = 1
ev_ms=$(db "SELECT max(at_ms) FROM events WHERE message_id = '$id_b' AND event = 'retry'")
wait1=$(( $(col "$id_b" next_ms) - ev_ms ))
check "retry: the first backoff is retry_base +-20% ($wait1 ms)" \
	test "$wait1" -ge 240000 -a "$wait1" -le 360000
status_json "$id_b"
check "retry: the event says which attempt failed" \
	sh -c "jq -r '.events[] | select(.event == \"retry\") | .detail' '$T/st.json' | grep -q '^push attempt 1 failed'"
check "retry: the copy is still submitted" test "$(col "$id_b" state)" = submitted
B0=$((ev_ms / 1000))
out=$(deliver_at $((B0 + 100)))
check "retry: a pass before the backoff does nothing ($out)" test "$out" = "0 copies handled"
check "retry: ... still one attempt" test "$(col "$id_b" attempts)" = 1
# A restart in the middle: hegnd comes and goes, the schedule stays.
start_hegnd
code=$(as ringsted-visitation -H 'Accept: application/json' "$URL/v1/messages/$id_b")
check "retry: after a restart the status still shows the retry" body_has '"event": *"retry"'
stop_hegnd
check "retry: ... and the schedule is unchanged" test "$(col "$id_b" attempts)" = 1
out=$(deliver_at $((B0 + 400)))
check "retry: the pass after the backoff tries again ($out)" test "$out" = "1 copy handled"
check "retry: two attempts, two retry events" \
	test "$(col "$id_b" attempts),$(nevents "$id_b" retry)" = "2,2"
wait2=$(( $(col "$id_b" next_ms) - (B0 + 400) * 1000 ))
check "retry: the second backoff doubles ($wait2 ms)" test "$wait2" -ge 480000 -a "$wait2" -le 720000
start_push "$T/push2"
check "retry: the endpoint is back on the same port" test -n "$PUSH_PID"
out=$(deliver_at $((B0 + 1200)))
check "retry: the next pass succeeds ($out)" test "$out" = "1 copy handled"
check "retry: delivered" test "$(col "$id_b" state)" = delivered
check "retry: the attempts are reset" test "$(col "$id_b" attempts)" = 0
check "retry: the receiver got it" test "$(nfiles "$T/push2" body)" = 1
check "retry: ... with the message id" grep -qi "^X-Hegn-Message-Id: $id_b" "$T/push2/1.headers"
check "retry: ... and the recorded digest" \
	test "$(sha256sum "$T/push2/1.body" | cut -d' ' -f1)" = "$(col "$id_b" sealed_sha256)"

##############################################################################
# 3. resend and deadline along the chain push -> smime-mail -> fax.
B1=$((B0 + 1200))
out=$(deliver_at $((B1 + 600)))
check "push resend: nothing before resend_after ($out)" test "$out" = "0 copies handled"
out=$(deliver_at $((B1 + 1801)))
check "push resend: after resend_after the copy is resent ($out)" test "$out" = "1 copy handled"
check "push resend: one resend" test "$(col "$id_b" resends)" = 1
check "push resend: the receiver got the same bytes again" cmp -s "$T/push2/1.body" "$T/push2/2.body"
check "push resend: ... with the same message id" grep -qi "^X-Hegn-Message-Id: $id_b" "$T/push2/2.headers"
check "push resend: a resent event" test "$(nevents "$id_b" resent)" = 1
start_hegnd
stop_hegnd
DL=$(( $(col "$id_b" deadline_ms) / 1000 ))
check "deadline: the referral's deadline is deadline_referral after submission" \
	test $((DL - B0)) -ge 10700 -a $((DL - B0)) -le 10800
out=$(deliver_at $((DL + 1)))
check "deadline: past it the copy falls back ($out)" test "$out" = "1 copy handled"
check "deadline: now on smime-mail" test "$(col "$id_b" channel)" = smime-mail
status_json "$id_b"
check "deadline: the reason is in deliveries[].fallback_reason" \
	test "$(st '.deliveries[0].fallback_reason')" = "no receipt by the deadline on push"
check "deadline: ... and in the events" \
	sh -c "jq -r '.events[] | select(.event == \"fallback\") | .detail' '$T/st.json' | grep -qx 'push -> smime-mail: no receipt by the deadline on push'"
check "deadline: no mail yet" test "$(nfiles "$T/smtp" eml)" = 0
out=$(deliver_at $((DL + 1)))
check "smime-mail: the next pass (a new process) sends the mail ($out)" test "$out" = "1 copy handled"
check "smime-mail: one mail arrived" test "$(nfiles "$T/smtp" eml)" = 1
check "smime-mail: over STARTTLS" grep -qx 'tls=1' "$T/smtp/1.meta"
check "smime-mail: to the party's address" grep -qx 'to=hjemmeplejen@ringsted.test' "$T/smtp/1.meta"
check "smime-mail: from mail_from" grep -qx 'from=hegn@ringsted.test' "$T/smtp/1.meta"
check "smime-mail: the subject names the id and kind only" \
	grep -q "^Subject: hegn message $id_b (referral)" "$T/smtp/1.eml"
check "smime-mail: decrypts with stock openssl cms and the party's key" \
	openssl cms -decrypt -in "$T/smtp/1.eml" -recip "$D/pki/ringsted-homecare.pem" \
	-inkey "$D/pki/ringsted-homecare.key" -out "$T/b.signed"
check "smime-mail: ... and verifies" \
	quiet openssl cms -verify -inform DER -in "$T/b.signed" -CAfile "$D/pki/ca.pem" -out "$T/b.json"
check "smime-mail: the payload is the referral" grep -q '"kind":"referral"' "$T/b.json"
openssl cms -cmsout -in "$T/smtp/1.eml" -outform DER -out "$T/b.mail.der" 2>/dev/null || true
check "smime-mail: the mail carries the same sealed bytes as the push" \
	cmp -s "$T/b.mail.der" "$T/push2/1.body"
check "smime-mail: no CPR in the mail's clear text" sh -c "! grep -q 2509479989 '$T/smtp/1.eml'"
check "smime-mail: delivered" test "$(col "$id_b" state)" = delivered
# A restart in the middle.
start_hegnd
code=$(as ringsted-visitation -H 'Accept: application/json' "$URL/v1/messages/$id_b")
check "deadline: after a restart the status shows smime-mail" \
	sh -c "jq -e '.deliveries[0].channel == \"smime-mail\"' '$T/body' >/dev/null"
stop_hegnd
DL2=$(( $(col "$id_b" deadline_ms) / 1000 ))
check "smime-mail: a deadline of its own after the fallback" test "$DL2" -gt "$DL"
out=$(deliver_at $((DL2 + 1)))
check "deadline: past the second deadline the copy falls back again ($out)" test "$out" = "1 copy handled"
check "deadline: now on fax" test "$(col "$id_b" channel)" = fax
check "deadline: no PDF before the fax pass" test "$(nfiles "$D/fax-out" pdf)" = 0
out=$(deliver_at $((DL2 + 1)))
check "fax: the next pass sends the fax ($out)" test "$out" = "1 copy handled"
check "fax: the PDF is in fax-out/" test -s "$D/fax-out/$id_b.pdf"
pdftotext "$D/fax-out/$id_b.pdf" "$T/fax.txt" 2>/dev/null || true
check "fax: the PDF names the message id" grep -q "$id_b" "$T/fax.txt"
check "fax: ... the kind" grep -qi 'henvisning\|referral' "$T/fax.txt"
check "fax: ... the personal-data warning" grep -q 'personoplysninger' "$T/fax.txt"
check "fax: ... in English too" grep -q 'personal data' "$T/fax.txt"
check "fax: ... the sender and recipient" \
	sh -c "grep -q 'Visitationen' '$T/fax.txt' && grep -q 'Hjemmeplejen' '$T/fax.txt'"
check "fax: ... and the content" grep -q 'rollator' "$T/fax.txt"
status_json "$id_b"
check "fax: the copy is counted as a fallback" test "$(st '.deliveries[0].state')" = fallback
check "fax: the reason for the last fallback stands" \
	test "$(st '.deliveries[0].fallback_reason')" = "no receipt by the deadline on smime-mail"
check "fax: the events carry both fallbacks and the fax" \
	sh -c "jq -r '.events[] | select(.event == \"fallback\") | .detail' '$T/st.json' >'$T/fb.txt' &&
	grep -qx 'smime-mail -> fax: no receipt by the deadline on smime-mail' '$T/fb.txt' &&
	grep -q '^sent by fax' '$T/fb.txt'"
out=$(deliver_at $((DL2 + 100000)))
check "fax: nothing more to do afterwards ($out)" test "$out" = "0 copies handled"
check "fax: one PDF only" test "$(nfiles "$D/fax-out" pdf)" = 1
check "fax: one mail only" test "$(nfiles "$T/smtp" eml)" = 1

##############################################################################
# 4. pull: MedCom's resend, duplicates, the first receipt stands.
start_hegnd
id_d=$(submit_to hovmand-care)
check "pull: referral to hovmand-care accepted" test -n "$id_d"
inbox_count() { # how often the id is listed in hovmand-care's inbox
	as hovmand-care "$URL/v1/inbox" >/dev/null
	jq --arg id "$1" '[.messages[] | select(.id == $id)] | length' "$T/body"
}
fetch_d() {
	as hovmand-care -H 'Accept: application/pkcs7-mime' "$URL/v1/messages/$id_d" >"$T/code"
	cp "$T/body" "$T/d.$1.der"
	test "$(cat "$T/code")" = 200
}
check "pull: the inbox lists it once" test "$(inbox_count "$id_d")" = 1
check "pull: fetched" fetch_d 1
check "pull: a fetched message leaves the inbox" test "$(inbox_count "$id_d")" = 0
check "pull: fetched twice: the same message again" fetch_d 2
check "pull: ... byte for byte" cmp -s "$T/d.1.der" "$T/d.2.der"
stop_hegnd
status_json "$id_d"
check "pull: one fetched event for two fetches" test "$(nevents "$id_d" fetched)" = 1
check "pull: the duplicate is counted in the status" test "$(st '.deliveries[0].duplicates')" = 1
F0=$(( $(db "SELECT max(at_ms) FROM events WHERE message_id = '$id_d' AND event = 'fetched'") / 1000 ))
out=$(deliver_at $((F0 + 1000)))
check "resend: nothing before resend_after ($out)" test "$out" = "0 copies handled"
for n in 1 2; do
	out=$(deliver_at $(( $(col "$id_d" next_ms) / 1000 + 1 )))
	check "resend $n: past resend_after the copy is offered again ($out)" test "$out" = "1 copy handled"
	check "resend $n: counted" test "$(col "$id_d" resends)" = "$n"
	check "resend $n: a resent event" test "$(nevents "$id_d" resent)" = "$n"
	start_hegnd
	check "resend $n: after a restart the inbox offers it again, once, with the same id" \
		test "$(inbox_count "$id_d")" = 1
	check "resend $n: fetched again" fetch_d "r$n"
	check "resend $n: the same bytes" cmp -s "$T/d.1.der" "$T/d.r$n.der"
	check "resend $n: gone from the inbox again" test "$(inbox_count "$id_d")" = 0
	stop_hegnd
done
out=$(deliver_at $(( $(col "$id_d" next_ms) / 1000 + 1 )))
check "resend: at most max_resends: no third ($out)" test "$(nevents "$id_d" resent)" = 2
check "resend: still delivered" test "$(col "$id_d" state)" = delivered
check "resend: the next look is the deadline" test "$(col "$id_d" next_ms)" = "$(col "$id_d" deadline_ms)"
start_hegnd
check "resend: not offered a third time" test "$(inbox_count "$id_d")" = 0
sha_d=$(sha256sum "$T/d.1.der" | cut -d' ' -f1)
sign_receipt "$id_d" "$sha_d" accepted hovmand-care "$T/d.rcpt"
sign_receipt "$id_d" "$sha_d" rejected hovmand-care "$T/d.rcpt2"
code=$(as hovmand-care -H 'Content-Type: application/pkcs7-mime' --data-binary @"$T/d.rcpt" "$URL/v1/messages/$id_d/receipt")
check "receipt: the first receipt is taken ($code)" test "$code" = 200
code=$(as hovmand-care -H 'Content-Type: application/pkcs7-mime' --data-binary @"$T/d.rcpt2" "$URL/v1/messages/$id_d/receipt")
check "receipt: a second, different receipt gets 409 ($code)" test "$code" = 409
code=$(as hovmand-care -H 'Content-Type: application/pkcs7-mime' --data-binary @"$T/d.rcpt" "$URL/v1/messages/$id_d/receipt")
check "receipt: the identical receipt again answers 200 ($code)" test "$code" = 200
check "receipt: ... and records nothing new" test "$(nevents "$id_d" acknowledged),$(nevents "$id_d" rejected)" = "1,0"
code=$(as ringsted-visitation -H 'Accept: application/json' "$URL/v1/messages/$id_d")
check "receipt: the first receipt stands" \
	sh -c "jq -e '.state == \"acknowledged\" and .deliveries[0].receipt.status == \"accepted\"' '$T/body' >/dev/null"
check "receipt: the status counts the duplicates (fetched 4 times, 3 offers)" \
	sh -c "jq -e '.deliveries[0].duplicates >= 1' '$T/body' >/dev/null"
check "receipt: the status counts the resends" \
	sh -c "jq -e '.deliveries[0].resends == 2' '$T/body' >/dev/null"
stop_hegnd

##############################################################################
# 5. pull never collected: past the deadline, fax.
start_hegnd
id_e=$(submit_to hovmand-care)
check "never collected: referral to hovmand-care accepted" test -n "$id_e"
stop_hegnd
out=$(deliver_at $(( $(col "$id_e" next_ms) / 1000 + 1 )))
check "never collected: no resend for a copy never fetched" test "$(nevents "$id_e" resent)" = 0
check "never collected: the next look is the deadline" test "$(col "$id_e" next_ms)" = "$(col "$id_e" deadline_ms)"
start_hegnd
stop_hegnd
DLE=$(( $(col "$id_e" deadline_ms) / 1000 ))
out=$(deliver_at $((DLE + 1)))
check "never collected: past the deadline it falls back to fax ($out)" test "$(col "$id_e" channel)" = fax
check "never collected: the reason says so" \
	test "$(col "$id_e" fallback_reason)" = "no receipt by the deadline on pull (never collected)"
out=$(deliver_at $((DLE + 1)))
check "never collected: the fax PDF lands in fax-out/" test -s "$D/fax-out/$id_e.pdf"
pdftotext "$D/fax-out/$id_e.pdf" "$T/fax-e.txt" 2>/dev/null || true
check "never collected: the PDF names the message id and Hovmand Care" \
	sh -c "grep -q '$id_e' '$T/fax-e.txt' && grep -q 'Hovmand Care' '$T/fax-e.txt'"
check "never collected: state fallback" test "$(col "$id_e" state)" = fallback

##############################################################################
# 6. Manual fallback, communication outside hegn, the reports and metrics.
start_hegnd
"$HEGN" -c "$CONF" report edag2 --format json >"$T/edag2.before"
share_before=$(jq '.total.electronic_share' "$T/edag2.before")
id_f=$(submit_to hovmand-care)
id_g=$(submit_to hovmand-care)
code=$(as hovmand-care -H 'Content-Type: application/json' \
	--data '{"channel": "phone", "reason": "not allowed"}' "$URL/v1/messages/$id_f/fallback")
check "manual fallback: a provider may not mark it ($code)" test "$code" = 403
code=$(as ringsted-visitation -H 'Content-Type: application/json' \
	--data '{"channel": "pigeon", "reason": "x"}' "$URL/v1/messages/$id_f/fallback")
check "manual fallback: an unknown channel gets 400 ($code)" test "$code" = 400
code=$(as ringsted-visitation -H 'Content-Type: application/json' \
	--data '{"channel": "phone"}' "$URL/v1/messages/$id_f/fallback")
check "manual fallback: no reason gets 400 ($code)" test "$code" = 400
code=$(as ringsted-visitation -H 'Content-Type: application/json' \
	--data '{"channel": "phone", "reason": "akut: ringet til vagten"}' "$URL/v1/messages/$id_f/fallback")
check "manual fallback via the API answers 200 ($code)" test "$code" = 200
check "manual fallback: state fallback" test "$(col "$id_f" state)" = fallback
check "manual fallback: channel phone" test "$(col "$id_f" channel)" = phone
check "manual fallback: no longer due" test "$(col "$id_f" next_ms)" = 0
check "manual fallback: no longer in the inbox" test "$(inbox_count "$id_f")" = 0
code=$(as ringsted-visitation -H 'Content-Type: application/json' \
	--data '{"channel": "phone", "reason": "again"}' "$URL/v1/messages/$id_d/fallback")
check "manual fallback: an acknowledged message gets 409 ($code)" test "$code" = 409
code=$(as ringsted-visitation -H 'Content-Type: application/json' \
	--data '{"channel": "fax", "reason": "x"}' "$URL/v1/messages/no-such-message/fallback")
check "manual fallback: an unknown message gets 404 ($code)" test "$code" = 404
check "manual fallback with hegn fallback" quiet "$HEGN" -c "$CONF" fallback "$id_g" \
	--channel post --reason "systemet hos leverandoeren er nede"
check "hegn fallback: state fallback, channel post" \
	test "$(col "$id_g" state),$(col "$id_g" channel)" = "fallback,post"
status_json "$id_g"
check "hegn fallback: the reason is in the status" \
	test "$(st '.deliveries[0].fallback_reason')" = "systemet hos leverandoeren er nede"
check "hegn fallback: an unknown message fails" sh -c "! '$HEGN' -c '$CONF' fallback no-such-id --channel fax --reason x 2>/dev/null"
code=$(as ringsted-visitation -H 'Content-Type: application/json' \
	--data '{"channel": "fax", "party": "region-hospital", "kind": "discharge_notice", "direction": "inbound", "reason": "hospitalet faxede udskrivningen"}' \
	"$URL/v1/fallbacks")
check "outside communication registered via POST /v1/fallbacks ($code)" test "$code" = 201
code=$(as ringsted-visitation -H 'Content-Type: application/json' \
	--data '{"channel": "fax", "party": "nobody", "reason": "x"}' "$URL/v1/fallbacks")
check "outside communication: an unknown party gets 400 ($code)" test "$code" = 400
check "outside communication with hegn fallback register" quiet "$HEGN" -c "$CONF" fallback register \
	--channel phone --party hovmand-care --kind observation --direction inbound --reason "ringede om borgeren"
"$HEGN" -c "$CONF" report edag2 --format json >"$T/edag2.json"
share_after=$(jq '.total.electronic_share' "$T/edag2.json")
check "edag2 json: the electronic share goes down ($share_before -> $share_after)" \
	quiet jq -n -e "$share_after < $share_before"
check "edag2 json: the total counts every copy and outside communication" \
	test "$(jq '.total.total' "$T/edag2.json")" = "$(( $(jq '.total.total' "$T/edag2.before") + 4 ))"
check "edag2 json: two faxes by the scheduler, one outside" test "$(jq '.total.fax' "$T/edag2.json")" = 3
check "edag2 json: one post" test "$(jq '.total.post' "$T/edag2.json")" = 1
check "edag2 json: two phone calls" test "$(jq '.total.phone' "$T/edag2.json")" = 2
check "edag2 json: electronic: the push receipt and the pull receipt" test "$(jq '.total.electronic' "$T/edag2.json")" = 2
check "edag2 json: the reasons are listed" \
	sh -c "jq -r '.fallback_reasons[].reason' '$T/edag2.json' >'$T/reasons.txt' &&
	grep -qx 'akut: ringet til vagten' '$T/reasons.txt' &&
	grep -qx 'hospitalet faxede udskrivningen' '$T/reasons.txt' &&
	grep -qx 'no receipt by the deadline on smime-mail' '$T/reasons.txt' &&
	grep -qx 'no receipt by the deadline on pull (never collected)' '$T/reasons.txt'"
check "edag2 json: a row for the inbound discharge notice from region-hospital" \
	sh -c "jq -e '.rows[] | select(.party == \"region-hospital\" and .kind == \"discharge_notice\" and .fax == 1)' '$T/edag2.json' >/dev/null"
"$HEGN" -c "$CONF" report edag2 --format csv >"$T/edag2.csv"
check "edag2 csv: the header" \
	sh -c "head -n 1 '$T/edag2.csv' | tr -d '\r' | grep -qx 'month,party,kind,electronic,fax,post,phone,failed,pending,total,electronic_share'"
check "edag2 csv: one line per row" \
	test "$(( $(wc -l <"$T/edag2.csv") - 1 ))" = "$(jq '.rows | length' "$T/edag2.json")"
check "edag2 csv: hovmand-care's referrals (2 fax/post... counted)" \
	grep -q ',hovmand-care,referral,' "$T/edag2.csv"
"$HEGN" -c "$CONF" report edag2 --format text >"$T/edag2.txt"
check "edag2 text: the total line" grep -q '^total: 2 of ' "$T/edag2.txt"
check "edag2 text: the reasons" grep -q 'akut: ringet til vagten' "$T/edag2.txt"
"$HEGN" -c "$CONF" report delivery --format json >"$T/delivery.json"
check "report delivery: fallbacks counted" test "$(jq '.outcomes.fallback' "$T/delivery.json")" = 6
check "report delivery: latency of the acknowledged copies" \
	test "$(jq '.submission_to_receipt.count' "$T/delivery.json")" = 2
check "report delivery: the pull copy's two resends" quiet jq -e '.resends >= 2' "$T/delivery.json"
check "report delivery: duplicates" quiet jq -e '.duplicates >= 1' "$T/delivery.json"
code=$(as ringsted-visitation "$URL/v1/reports/delivery")
check "GET /v1/reports/delivery answers 200 to the visitation office ($code)" test "$code" = 200
check "GET /v1/reports/delivery: the same counts as hegn report" \
	sh -c "jq -S 'del(.submission_to_receipt)' '$T/body' >'$T/r1' && jq -S 'del(.submission_to_receipt)' '$T/delivery.json' >'$T/r2' && cmp -s '$T/r1' '$T/r2'"
check "GET /v1/reports/delivery: the reasons" \
	sh -c "jq -r '.fallback_reasons[].reason' '$T/body' | grep -qx 'ringede om borgeren'"
check "GET /v1/reports/delivery: by party, by kind, by month" \
	quiet jq -e '(.by_party | length) > 0 and (.by_kind | length) > 0 and (.by_month | length) > 0' "$T/body"
code=$(as ringsted-visitation "$URL/v1/reports/delivery?from=2040-01-01T00:00:00Z")
check "GET /v1/reports/delivery?from=...: a period with nothing in it ($code)" \
	sh -c "[ $code = 200 ] && jq -e '.total == 0' '$T/body' >/dev/null"
check "hegn report delivery --to: a period before everything" \
	sh -c "'$HEGN' -c '$CONF' report delivery --to 2000-01-01T00:00:00Z | jq -e '.total == 0' >/dev/null"
check "hegn report edag2 --format json: an empty period" \
	sh -c "'$HEGN' -c '$CONF' report edag2 --from 2040-01-01T00:00:00Z --format json | jq -e '.total.total == 0 and (.rows | length) == 0' >/dev/null"
check "hegn report edag2 --format csv: an empty period is the header alone" \
	sh -c "test \"\$('$HEGN' -c '$CONF' report edag2 --from 2040-01-01T00:00:00Z --format csv | wc -l)\" = 1"
check "hegn report edag2 --format text: an empty period" \
	sh -c "'$HEGN' -c '$CONF' report edag2 --from 2040-01-01T00:00:00Z --format text | grep -q '^total: 0 of 0'"
code=$(as hovmand-care "$URL/v1/reports/delivery")
check "GET /v1/reports/delivery: a provider gets 403 ($code)" test "$code" = 403
code=$(as ringsted-audit "$URL/metrics")
check "GET /metrics answers 200 to the auditor ($code)" test "$code" = 200
cp "$T/body" "$T/metrics.txt"
check "metrics: hegn_deliveries by outcome and channel" \
	grep -q '^hegn_deliveries{outcome="acknowledged",channel="push"} 1$' "$T/metrics.txt"
check "metrics: fallbacks by channel" \
	grep -q '^hegn_deliveries{outcome="fallback",channel="fax"} ' "$T/metrics.txt"
check "metrics: the latency histogram" \
	sh -c "grep -q '^# TYPE hegn_delivery_latency_seconds histogram' '$T/metrics.txt' &&
	grep -q '^hegn_delivery_latency_seconds_bucket{le=\"+Inf\"} 2$' '$T/metrics.txt' &&
	grep -q '^hegn_delivery_latency_seconds_count 2$' '$T/metrics.txt'"
check "metrics: hegn_queue_depth (nothing left open)" grep -q '^hegn_queue_depth 0$' "$T/metrics.txt"
check "metrics: hegn_oldest_unacknowledged_seconds" grep -q '^hegn_oldest_unacknowledged_seconds ' "$T/metrics.txt"
check "metrics: duplicates counted" sh -c "grep '^hegn_duplicates_total ' '$T/metrics.txt' | grep -qv ' 0$'"
check "metrics: resends counted" sh -c "grep '^hegn_resends_total ' '$T/metrics.txt' | grep -qv ' [01]$'"
id_h=$(submit_to hovmand-care)
code=$(as ringsted-audit "$URL/metrics")
check "metrics: an open copy shows in hegn_queue_depth" grep -q '^hegn_queue_depth 1$' "$T/body"
code=$(anon "$URL/metrics")
check "metrics: without a client certificate 401 ($code)" test "$code" = 401
stop_hegnd

##############################################################################
# 7. Deadlines per kind and per message.
# A cancellation is about a citizen the provider serves.
quiet "$HEGN" -c "$CONF" assign add --cpr 2509479989 --provider hovmand-care \
	--services practical_help --from "$(date -u +%F)"
start_hegnd
jq '.to = "hovmand-care"' "$D/examples/cancellation.json" >"$T/cancel.json"
code=$(as ringsted-visitation -H 'Content-Type: application/json' --data-binary @"$T/cancel.json" "$URL/v1/messages")
id_k=$(json_field id)
check "kind deadline: a cancellation accepted ($code)" test "$code" = 201
own=$(( $(date +%s) + 3600 ))
jq --arg dl "$(at "$own")" '.to = "hovmand-care" | .deadline = $dl' "$D/examples/referral.json" >"$T/own.json"
code=$(as ringsted-visitation -H 'Content-Type: application/json' --data-binary @"$T/own.json" "$URL/v1/messages")
id_m=$(json_field id)
check "message deadline: a referral with its own deadline accepted ($code)" test "$code" = 201
stop_hegnd
created_k=$(db "SELECT created_ms FROM messages WHERE id = '$id_k'")
check "kind deadline: deadline_cancellation applies" \
	test $(( $(col "$id_k" deadline_ms) - created_k )) = 5400000
check "message deadline: the message's own deadline overrides the kind's" \
	test "$(col "$id_m" deadline_ms)" = "$((own * 1000))"
status_json "$id_m"
check "message deadline: the status shows it ($(st '.deliveries[0].deadline'))" \
	test "$(date -u -d "$(st '.deliveries[0].deadline')" +%s)" = "$own"
deliver_at $((own - 1)) >/dev/null
check "message deadline: nothing before it" test "$(col "$id_m" channel),$(col "$id_m" state)" = pull,submitted
deliver_at $((own + 1)) >/dev/null
check "message deadline: past it the copy falls back to fax" test "$(col "$id_m" channel)" = fax
check "kind deadline: the cancellation still waits" test "$(col "$id_k" channel)" = pull
deliver_at $((created_k / 1000 + 5401)) >/dev/null
check "kind deadline: past deadline_cancellation the cancellation falls back too" \
	test "$(col "$id_k" channel)" = fax
deliver_at $((created_k / 1000 + 5401)) >/dev/null
check "kind deadline: both faxed" test -s "$D/fax-out/$id_m.pdf" -a -s "$D/fax-out/$id_k.pdf"
pdftotext "$D/fax-out/$id_k.pdf" "$T/fax-k.txt" 2>/dev/null || true
check "kind deadline: the cancellation's fax names its kind" grep -qi 'cancellation\|afmelding\|ophør' "$T/fax-k.txt"

##############################################################################
# 8. Every channel refuses: push 400, SMTP 550, the fax command fails; the
#    copy fails after the paper channel's tries, counted as failed.
setkey "party ringsted-homecare" push_url "https://127.0.0.1:$PUSH_PORT/refuse"
setkey "party ringsted-homecare" mail "reject@ringsted.test"
setkey delivery fax_command "/bin/false {file}"
mails=$(nfiles "$T/smtp" eml)
start_hegnd
id_r=$(submit_to ringsted-homecare)
check "refusals: referral submitted" test -n "$id_r"
check "refusals: hegnd walks the chain at once and retries the fax" wait_for has_event "$id_r" retry
stop_hegnd
status_json "$id_r"
jq -r '.events[] | select(.event == "fallback") | .detail' "$T/st.json" >"$T/fb-r.txt"
check "refusals: a push answered 400 falls back to smime-mail" grep -q '^push -> smime-mail: .*400' "$T/fb-r.txt"
check "refusals: a mail refused with 550 falls back to fax" grep -q '^smime-mail -> fax: .*550' "$T/fb-r.txt"
check "refusals: no mail was queued" test "$(nfiles "$T/smtp" eml)" = "$mails"
check "refusals: the fax command failed once" test "$(col "$id_r" attempts)" = 1
for n in 2 3 4; do
	deliver_at $(( $(col "$id_r" next_ms) / 1000 + 1 )) >/dev/null
	check "refusals: fax try $n fails and is retried" test "$(col "$id_r" attempts),$(col "$id_r" state)" = "$n,submitted"
done
prev=$(( $(col "$id_r" next_ms) / 1000 ))
start_hegnd
stop_hegnd
deliver_at $((prev + 1)) >/dev/null
check "refusals: after the fifth try the copy fails" test "$(col "$id_r" state)" = failed
reason_r=$(col "$id_r" fallback_reason)
check "refusals: the reason names the fax command ($reason_r)" grep -q 'false' <<<"$reason_r"
status_json "$id_r"
check "refusals: a failed event: no channel left" \
	sh -c "jq -r '.events[] | select(.event == \"failed\") | .detail' '$T/st.json' | grep -q 'no channel left'"
check "refusals: no PDF left behind" test ! -e "$D/fax-out/$id_r.pdf"
check "refusals: nothing due any more" test "$(col "$id_r" next_ms)" = 0
"$HEGN" -c "$CONF" report edag2 --format json >"$T/edag2.end"
check "refusals: eDag2 counts the failure" test "$(jq '.total.failed' "$T/edag2.end")" = 1

##############################################################################
# 8b. A receipt over the API while the push is under way: the receiver posts
#     it to hegnd before it answers the push.  The receipt stands; the
#     scheduler's "delivered by push", written after, must not undo it.
rm -f "$T/push-rf.port"
"$PY" "$SRC/tests/integration/push_receiver.py" --cert "$D/pki/gateway-fullchain.pem" \
	--key "$D/pki/gateway.key" --ca "$D/pki/ca.pem" --dir "$T/push-rf" \
	--port-file "$T/push-rf.port" --hegn-url "$URL" \
	--party-cert "$D/pki/ringsted-homecare.pem" --party-key "$D/pki/ringsted-homecare.key" \
	--sign-cert "$D/pki/ringsted-homecare.pem" --sign-key "$D/pki/ringsted-homecare.key" &
RF_PID=$!
mkdir -p "$T/push-rf"
wait_for test -s "$T/push-rf.port" || { echo "push receiver did not start"; exit 1; }
setkey "party ringsted-homecare" push_url "https://127.0.0.1:$(cat "$T/push-rf.port")/receipt-first"
start_hegnd
id_rf=$(submit_to ringsted-homecare)
check "receipt first: referral to ringsted-homecare accepted" test -n "$id_rf"
check "receipt first: the receiver's receipt, posted during the push, was taken (200)" \
	wait_for grep -q '^200' "$T/push-rf/1.receipt-status"
check "receipt first: hegnd records the push all the same" wait_for has_event "$id_rf" delivered
status_json "$id_rf"
check "receipt first: the copy stays acknowledged" test "$(st .state)" = acknowledged
check "receipt first: ... and is due no more" test "$(col "$id_rf" next_ms)" = 0
check "receipt first: hegnd logged that it left the copy as it found it" \
	grep -q "$id_rf to ringsted-homecare changed during the pass (now acknowledged)" "$T/hegnd.log"
stop_hegnd
stop_pid "$RF_PID"

##############################################################################
# 9. The daemon log and what the scheduler logs carry no CPR.
check "the daemon log is not empty" test -s "$T/hegnd.log"
check "the daemon log carries no CPR" sh -c "! grep -q '2509479989\|250947-9989' '$T/hegnd.log'"
check "the daemon log carries no citizen name" sh -c "! grep -q 'Elmer\|Testesen' '$T/hegnd.log'"
check "what hegn deliver logged carries no CPR" sh -c "! grep -q '2509479989\|250947-9989' '$T/deliver.log'"
check "no sanitizer reports" no_sanitizer_reports
check "hegn deliver: no sanitizer reports" \
	sh -c "! grep -q 'ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:' '$T/deliver.log'"

finish

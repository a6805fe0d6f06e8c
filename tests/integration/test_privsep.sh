#!/usr/bin/env bash
# Privilege separation (docs/PRIVSEP.md): hegnd started as root serves HTTP
# as an unprivileged account that cannot read a private key, while a key
# process keeps the keys; killing the network process loses nothing it
# acknowledged, and takes the key process with it.
if [ "$(id -u)" != 0 ]; then
	echo "SKIP: privilege separation needs hegnd started as root"
	exit 77
fi
. "$(dirname "$0")/lib.sh"

# The account hegnd picks without [server] user: hegn, else nobody.
if id hegn >/dev/null 2>&1; then ACCOUNT=hegn; else ACCOUNT=nobody; fi
AUID=$(id -u "$ACCOUNT")
AGID=$(id -g "$ACCOUNT")
CONF="$D/hegn.conf"
uids() { sed -n 's/^Uid:[[:space:]]*//p' "/proc/$1/status" | tr -s '[:space:]' ' ' | sed 's/ $//'; }
child_of() { ps -o pid= --ppid "$1" | tr -d ' ' | head -n 1; }
# gone: no process, or a zombie waiting for a reaper that PID 1 of a container may never be.
gone() { ! [ -e "/proc/$1" ] || grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }
wait_gone() { for _ in $(seq 100); do gone "$1" && return 0; sleep 0.1; done; return 1; }
as_account() { setpriv --reuid="$AUID" --regid="$AGID" --clear-groups "$@"; }

# A [server] user that does not exist stops the start, naming it.
rm -rf "$D"
"$HEGN" demo init "$D" --port 1 >/dev/null
sed -i 's/^\[server\]$/[server]\nuser = no-such-account-hegn/' "$CONF"
"$HEGND" -c "$CONF" -D 2>"$T/nouser.log" && r=0 || r=$?
check "an unknown [server] user refuses the start" test "$r" != 0
check "... naming the account" grep -q 'no-such-account-hegn' "$T/nouser.log"
check "... before a pid file is written" test ! -e "$D/run/hegnd.pid"

start_demo
NET=$(cat "$D/run/hegnd.pid")
KEYS=$(child_of "$NET")
check "the network process is the pid file's process" test -d "/proc/$NET"
check "the key process is its child" test -n "$KEYS"
check "the network process runs as $ACCOUNT (real, effective, saved, fs)" \
	test "$(uids "$NET")" = "$AUID $AUID $AUID $AUID"
check "the network process has no supplementary groups but $ACCOUNT's" \
	sh -c "grep '^Groups:' /proc/$NET/status | grep -qv '[[:space:]]0\\b'"
check "the network process cannot gain privileges (NoNewPrivs)" \
	grep -q '^NoNewPrivs:[[:space:]]*1' "/proc/$NET/status"
check "the key process runs as root" test "$(uids "$KEYS")" = "0 0 0 0"
check "the network process is not dumpable (its /proc entries stay root's)" \
	test "$(stat -c %u "/proc/$NET/fd")" = 0
check "hegnd logged that privilege separation is on" grep -q "serving as $ACCOUNT" "$T/hegnd.log"

# Every private key is out of the network process's reach: EACCES, not a missing file.
nkeys=0
for key in "$D"/pki/*.key "$D/state/audit.key" "$D/state/citizen.key"; do
	nkeys=$((nkeys + 1))
	as_account cat "$key" >/dev/null 2>"$T/cat.err" && r=0 || r=$?
	check "as $ACCOUNT, reading $(basename "$key") fails" test "$r" != 0
	check "... with Permission denied (EACCES)" grep -q 'Permission denied' "$T/cat.err"
	check "... while root can read it" test -s "$key"
done
check "at least the gateway's, the hosted parties', audit and citizen keys were tried" \
	test "$nkeys" -ge 5
check "the account cannot rename a key in the shared state folder (sticky)" \
	sh -c "! setpriv --reuid=$AUID --regid=$AGID --clear-groups mv '$D/state/audit.key' '$D/state/x' 2>/dev/null"
check "... the key is still there" test -f "$D/state/audit.key"
check "the network process has no key file open" \
	sh -c "! ls -l /proc/$NET/fd | grep -q '\\.key\$'"
check "the network process can write its database" \
	test "$(stat -c %u "$D/state/hegn.db")" = "$AUID"

# One delivery scheduler per store (relay.c scheduler_lock): a second hegnd on
# the same database refuses to start, and `hegn deliver` refuses; the lock
# file belongs to the account, as the database's other files do.
check "the scheduler lock belongs to $ACCOUNT" \
	test "$(stat -c %u "$D/state/hegn.db-scheduler")" = "$AUID"
check "the network process holds it (flock)" grep -qE \
	"FLOCK +ADVISORY +WRITE +$NET +[0-9a-f]+:[0-9a-f]+:$(stat -c %i "$D/state/hegn.db-scheduler") " /proc/locks
sed "s/^port = .*/port = 1/" "$CONF" >"$D/second.conf"
"$HEGND" -c "$D/second.conf" -D 2>"$T/second.log" && r=0 || r=$?
check "a second hegnd on the same database refuses to start" test "$r" != 0
check "... saying the scheduler lock is held" grep -q 'hegn.db-scheduler is locked' "$T/second.log"
check "... and the first still serves" test -d "/proc/$NET"
"$HEGN" -c "$CONF" deliver >/dev/null 2>"$T/deliver.err" && r=0 || r=$?
check "hegn deliver beside it refuses" sh -c "[ $r != 0 ] && grep -q 'is locked' '$T/deliver.err'"

# The whole flow still works: SIGN (JSON submission), RSA_DECRYPT (a sealed
# submission, opened in the network process, PKCS#1 v1.5 as stock openssl
# makes it), fetch, receipt, and CHECKPOINT (on stop) go through the key process.
code=$(as ringsted-visitation -H 'Content-Type: application/json' \
	--data-binary @"$D/examples/referral.json" "$URL/v1/messages")
check "JSON referral accepted: 201 (signed by the key process)" test "$code" = 201
id=$(json_field id)
code=$(as hovmand-care -H 'Accept: application/pkcs7-mime' "$URL/v1/messages/$id")
cp "$T/body" "$T/sealed.der"
check "hovmand-care fetches it: 200" test "$code" = 200
check "stock openssl cms opens and verifies it" sh -c \
	"openssl cms -decrypt -inform DER -in '$T/sealed.der' -recip '$D/pki/hovmand-care.pem' \
	-inkey '$D/pki/hovmand-care.key' | openssl cms -verify -inform DER -CAfile '$D/pki/ca.pem' \
	-out '$T/payload.json' 2>/dev/null"
check "... it is the referral" grep -q '"kind":"referral"' "$T/payload.json"
sha=$(sha256sum "$T/sealed.der" | cut -d' ' -f1)
printf '{"message_id":"%s","sha256":"%s","status":"accepted"}' "$id" "$sha" >"$T/receipt.json"
openssl cms -sign -binary -nodetach -outform DER -md sha256 -in "$T/receipt.json" \
	-signer "$D/pki/hovmand-care.pem" -inkey "$D/pki/hovmand-care.key" \
	-keyopt rsa_padding_mode:pss -keyopt rsa_pss_saltlen:32 -out "$T/receipt.der"
code=$(as hovmand-care -H 'Content-Type: application/pkcs7-mime' --data-binary @"$T/receipt.der" \
	"$URL/v1/messages/$id/receipt")
check "the signed receipt is taken: 200" test "$code" = 200
check "... the message is acknowledged" body_has '"acknowledged"'
# sealed_submission WHAT [openssl cms -encrypt options]: hovmand-care's
# observation, signed and sealed to the gateway by stock openssl, is taken;
# a damaged copy gets 400 and nothing that tells why.
sealed_submission() {
	local what=$1 size
	shift
	"$HEGN" -c "$CONF" assign add --cpr 2509479989 --provider hovmand-care \
		--services practical_help --from "$(date -u +%F)" >/dev/null
	openssl cms -sign -binary -nodetach -outform DER -md sha256 \
		-in "$D/examples/observation.json" -signer "$D/pki/hovmand-care.pem" \
		-inkey "$D/pki/hovmand-care.key" -out "$T/obs.signed"
	openssl cms -encrypt -binary -inform DER -outform DER -aes-256-gcm -in "$T/obs.signed" \
		-recip "$D/pki/gateway.pem" "$@" -out "$T/obs.sealed"
	code=$(anon -H 'Content-Type: application/pkcs7-mime' --data-binary @"$T/obs.sealed" \
		"$URL/v1/messages")
	check "a sealed submission ($what) is opened: 201 ($code)" test "$code" = 201
	cp "$T/obs.sealed" "$T/obs.bad"
	size=$(stat -c %s "$T/obs.bad")
	flip_byte "$T/obs.bad" $((size - 40))
	code=$(anon -H 'Content-Type: application/pkcs7-mime' --data-binary @"$T/obs.bad" \
		"$URL/v1/messages")
	check "... a damaged one gets 400 ($code)" test "$code" = 400
	check "... saying only that it cannot be opened" \
		body_has 'not addressed to this key or is damaged'
}
sealed_submission "RSA, PKCS#1 v1.5 key transport"
check "... and the key process is still there" test -d "/proc/$KEYS"

# SIGHUP rereads anchors, CRLs and policies as the account.
kill -HUP "$NET"
for _ in $(seq 50); do grep -q 'reloaded trust anchors' "$T/hegnd.log" && break; sleep 0.1; done
check "SIGHUP reloads as the account" grep -q 'reloaded trust anchors' "$T/hegnd.log"

# A clean stop: the checkpoint is signed by the key process, which then exits.
kill -TERM "$NET"
for _ in $(seq 100); do [ -d "/proc/$NET" ] || break; sleep 0.1; done
check "hegnd stops on SIGTERM" test ! -d "/proc/$NET"
check "the key process ends with it" wait_gone "$KEYS"
check "a checkpoint was written through the key process" test "$(rows checkpoints)" -ge 1
"$HEGN" -c "$CONF" audit verify >"$T/verify.txt" 2>&1 && r=0 || r=$?
check "hegn audit verify passes" test "$r" = 0

# From here on with the seccomp filter, when hegnd was built with libseccomp.
SECCOMP=no
if grep -q '^#define HAVE_SECCOMP 1' "$HEGN_BUILDDIR/config.h" 2>/dev/null; then
	SECCOMP=yes
	sed -i 's/^\[server\]$/[server]\nseccomp = yes/' "$CONF"
else
	echo "# hegnd built without libseccomp: the seccomp checks are skipped"
fi

# Kill -9 the network process while submissions run: every 2xx survives.
"$HEGND" -c "$CONF" -D 2>>"$T/hegnd.log"
NET=$(cat "$D/run/hegnd.pid")
KEYS=$(child_of "$NET")
check "hegnd starts again as root over the same state" test -n "$KEYS"
if [ "$SECCOMP" = yes ]; then
	check "seccomp = yes: the network process runs under a seccomp filter" \
		grep -q '^Seccomp:[[:space:]]*2' "/proc/$NET/status"
	check "... the key process does not" grep -q '^Seccomp:[[:space:]]*0' "/proc/$KEYS/status"
	check "... and hegnd says so" grep -q 'system calls filtered (seccomp)' "$T/hegnd.log"
fi
: >"$T/acked"
submit_loop() { # submit_loop N: 40 submissions, one after the other
	local i code out
	for i in $(seq 1 40); do
		out="$T/sub.$1.$i"
		code=$(curl -sS -o "$out" -w '%{http_code}' --cacert "$D/pki/ca.pem" \
			--cert "$D/pki/ringsted-visitation.pem" --key "$D/pki/ringsted-visitation.key" \
			-H 'Content-Type: application/json' --data-binary @"$D/examples/referral.json" \
			"$URL/v1/messages" 2>/dev/null) || code=000
		echo "$code" >>"$T/codes"
		case $code in
		2??) echo "$(sed -n 's/.*"id": *"\([^"]*\)".*/\1/p' "$out" | head -n 1)" >>"$T/acked" ;;
		esac
	done
}
# Three clients at once, so the kill lands with requests in flight.
submit_loop 1 &
l1=$!
submit_loop 2 &
l2=$!
submit_loop 3 &
l3=$!
for _ in $(seq 200); do [ "$(wc -l <"$T/acked")" -ge 8 ] && break; sleep 0.05; done
KWORKERS=$(ps -o pid= --ppid "$KEYS" | tr -d ' ' | tr '\n' ' ')
check "the key process has its workers ($KWORKERS)" test -n "$KWORKERS"
kill -KILL "$NET"
wait "$l1" "$l2" "$l3" || true
echo "# answers around the kill: $(sort "$T/codes" | uniq -c | tr -s ' \n' ' ')"
n=$(wc -l <"$T/acked")
check "some submissions were acknowledged before the kill ($n)" test "$n" -ge 5
check "the key process exits when the network process dies" wait_gone "$KEYS"
for wk in $KWORKERS; do
	check "... and so does its worker $wk" wait_gone "$wk"
done
rm -f "$D/run/hegnd.pid"
"$HEGND" -c "$CONF" -D 2>>"$T/hegnd.log"
check "hegnd restarts after SIGKILL" test -s "$D/run/hegnd.pid"
missing=0
while read -r mid; do
	[ -n "$mid" ] || { missing=$((missing + 1)); continue; }
	code=$(as ringsted-visitation -H 'Accept: application/json' "$URL/v1/messages/$mid")
	if [ "$code" != 200 ] || ! grep -q "\"$mid\"" "$T/body"; then
		missing=$((missing + 1))
		echo "# lost: $mid ($code) $(cat "$T/body")"
	fi
done <"$T/acked"
check "every acknowledged submission is present after the restart ($n checked)" test "$missing" = 0
check "PRAGMA integrity_check is ok" test "$(sqlite3 "$D/state/hegn.db" 'PRAGMA integrity_check')" = ok
# Without its key process the network process stops (so a supervisor restarts both).
NET=$(cat "$D/run/hegnd.pid")
KEYS=$(child_of "$NET")
kill -KILL "$KEYS"
for _ in $(seq 100); do [ -d "/proc/$NET" ] || break; sleep 0.1; done
check "the network process stops when the key process dies" test ! -d "/proc/$NET"
check "... and says why" grep -q 'the key process was killed by signal 9' "$T/hegnd.log"
rm -f "$D/run/hegnd.pid"
"$HEGN" -c "$CONF" audit verify >"$T/verify2.txt" 2>&1 && r=0 || r=$?
check "hegn audit verify passes after the kill and restart" test "$r" = 0

# Two key workers (crypto_workers = 2, docs/PRIVSEP.md "Concurrency"): each
# serves a connection of its own, so one stuck worker does not stop the
# other, and one killed worker stops the whole daemon.
sed -i 's/^\[limits\]$/[limits]\ncrypto_workers = 2/' "$CONF"
# No periodic checkpoint (it holds a write transaction while it waits for its
# signature) may land on the stopped worker below: only the one after the start.
sed -i 's/^checkpoint_interval = .*/checkpoint_interval = 86400/' "$CONF"
cps=$(rows checkpoints)
"$HEGND" -c "$CONF" -D 2>>"$T/hegnd.log"
NET=$(cat "$D/run/hegnd.pid")
KEYS=$(child_of "$NET")
WORKERS=$(ps -o pid= --ppid "$KEYS" | tr -d ' ' | sort -n | tr '\n' ' ')
set -- $WORKERS
check "crypto_workers = 2: the key process has two workers ($WORKERS)" test $# = 2
W1=${1:-}
W2=${2:-}
check "... and hegnd says so" grep -q 'keys in process [0-9]* with 2 workers' "$T/hegnd.log"
fds_of() { ls "/proc/$1/fd" | sort -n | tr '\n' ' '; }
sockets_of() { ls -l "/proc/$1/fd" | grep -c 'socket:' || true; }
check "the key process keeps standard input, output and error only ($(fds_of "$KEYS"))" \
	test "$(fds_of "$KEYS")" = "0 1 2 "
for wk in $W1 $W2; do
	check "key worker $wk runs as root" test "$(uids "$wk")" = "0 0 0 0"
	check "... holds standard input, output, error and one socket ($(fds_of "$wk"))" \
		test "$(fds_of "$wk" | wc -w)" = 4 -a "$(fds_of "$wk" | cut -d' ' -f1-3)" = "0 1 2" \
		-a "$(sockets_of "$wk")" = 1
	check "... has no key file open" sh -c "! ls -l /proc/$wk/fd | grep -q '\\.key\$'"
done
for _ in $(seq 50); do [ "$(rows checkpoints)" -gt "$cps" ] && break; sleep 0.2; done
# One worker stopped in its tracks: of two submissions at once at most one
# waits for it; the other gets the second connection and is answered.
kill -STOP "$W1"
sub_bg() { # sub_bg N: one submission; its status code goes to $T/par.N
	curl -sS -o /dev/null -w '%{http_code}' --cacert "$D/pki/ca.pem" \
		--cert "$D/pki/ringsted-visitation.pem" --key "$D/pki/ringsted-visitation.key" \
		-H 'Content-Type: application/json' --data-binary @"$D/examples/referral.json" \
		"$URL/v1/messages" >"$T/par.$1.tmp" 2>/dev/null || echo 000 >"$T/par.$1.tmp"
	mv "$T/par.$1.tmp" "$T/par.$1"
}
rm -f "$T"/par.*
sub_bg 1 &
p1=$!
sub_bg 2 &
p2=$!
answered=
for _ in $(seq 300); do
	for n in 1 2; do
		if [ -f "$T/par.$n" ]; then answered="$answered $(cat "$T/par.$n")"; fi
	done
	if [ -n "$answered" ]; then break; fi
	sleep 0.1
done
check "with one key worker stopped, a submission is answered by the other ($answered)" \
	sh -c "echo '$answered' | grep -q 201"
kill -CONT "$W1"
wait "$p1" "$p2" || true
check "... and once it goes on, both are: $(cat "$T/par.1" "$T/par.2" | tr '\n' ' ')" \
	test "$(cat "$T/par.1" "$T/par.2" | tr -d '\n')" = 201201
# Killing one worker stops the key side, and with it the network process.
kill -KILL "$W2"
for _ in $(seq 100); do [ -d "/proc/$NET" ] || break; sleep 0.1; done
check "the network process stops when a key worker dies" test ! -d "/proc/$NET"
check "... the key process says which way it ended" \
	grep -q 'keyd: stopped (a key worker was killed by signal 9)' "$T/hegnd.log"
check "... the network process says why it stops" \
	grep -q 'the key process exited with status 1: stopping' "$T/hegnd.log"
check "... the key process is gone" wait_gone "$KEYS"
check "... and so is the other worker" wait_gone "$W1"
rm -f "$D/run/hegnd.pid"
"$HEGN" -c "$CONF" audit verify >"$T/verify3.txt" 2>&1 && r=0 || r=$?
check "hegn audit verify passes after a key worker's death" test "$r" = 0
sed -i 's/^checkpoint_interval = .*/checkpoint_interval = 60/' "$CONF"
# A first start without a database: hegnd creates it for the account, and
# root's own tools read it beside the running daemon without disturbing it.
rm -f "$D"/state/hegn.db "$D"/state/hegn.db-*
"$HEGND" -c "$CONF" -D 2>>"$T/hegnd.log"
check "hegnd starts without a database" test -s "$D/run/hegnd.pid"
check "... and the new database is the account's" test "$(stat -c %u "$D/state/hegn.db")" = "$AUID"
for round in 1 2; do
	code=$(as ringsted-visitation -H 'Content-Type: application/json' \
		--data-binary @"$D/examples/referral.json" "$URL/v1/messages")
	check "submission $round to the new database: 201" test "$code" = 201
	id=$(json_field id)
	"$HEGN" -c "$CONF" status "$id" >"$T/status.txt" 2>&1 || true
	check "... root's hegn status sees it" grep -q 'state: submitted' "$T/status.txt"
done
kill -TERM "$(cat "$D/run/hegnd.pid")"
for _ in $(seq 100); do [ -f "$D/run/hegnd.pid" ] || break; sleep 0.1; done

# EC keys (P-256): a sealed submission is opened in the network process, the
# key process making only the ECDH of the gateway's key with the sender's
# ephemeral point (docs/PRIVSEP.md, "The requests").
rm -rf "$D"
"$HEGN" demo init "$D" --port "$PORT" --keytype p256 >/dev/null
# Under the seccomp filter too, when there is one: opening moved into the filtered process.
[ "$SECCOMP" = no ] || sed -i 's/^\[server\]$/[server]\nseccomp = yes/' "$CONF"
"$HEGND" -c "$CONF" -D 2>>"$T/hegnd.log"
check "hegnd starts with P-256 keys" test -s "$D/run/hegnd.pid"
if [ "$SECCOMP" = yes ]; then
	check "... under the seccomp filter" \
		grep -q '^Seccomp:[[:space:]]*2' "/proc/$(cat "$D/run/hegnd.pid")/status"
fi
sealed_submission "P-256, ECDH" -keyopt ecdh_kdf_md:sha256
kill -TERM "$(cat "$D/run/hegnd.pid")"
for _ in $(seq 100); do [ -f "$D/run/hegnd.pid" ] || break; sleep 0.1; done
check "no sanitizer reports" no_sanitizer_reports

finish

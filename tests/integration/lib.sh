# Shared by the integration tests: a private hegnd on a free loopback port
# with its own demo world, cleaned up on exit however the test ends.
set -euo pipefail

: "${HEGN_BUILDDIR:?run through make check, or set HEGN_BUILDDIR}"
HEGN="$HEGN_BUILDDIR/hegn"
HEGND="$HEGN_BUILDDIR/hegnd"
T=$(mktemp -d /tmp/hegn-it-XXXXXX)
# Run as root, hegnd serves as an unprivileged account (docs/PRIVSEP.md),
# which must be able to reach the demo's state and run folders.
chmod 755 "$T"
D="$T/demo"
PORT=
PASSES=0
FAILS=0

cleanup() {
	if [ -f "$D/run/hegnd.pid" ]; then
		kill "$(cat "$D/run/hegnd.pid")" 2>/dev/null || true
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			[ -f "$D/run/hegnd.pid" ] || break
			sleep 0.2
		done
	fi
	rm -rf "$T"
}
trap cleanup EXIT

ok() { PASSES=$((PASSES + 1)); echo "ok - $*"; }
not_ok() { FAILS=$((FAILS + 1)); echo "not ok - $*"; }
check() { # check DESCRIPTION COMMAND...
	local d=$1
	shift
	if "$@"; then ok "$d"; else not_ok "$d"; fi
}
finish() {
	echo "$PASSES passed, $FAILS failed"
	[ "$FAILS" -eq 0 ]
}

# Create the demo world and start hegnd on a free port (retrying on a clash).
start_demo() {
	local tries=0
	while :; do
		PORT=$(( (RANDOM % 20000) + 30000 + ($$ % 1000) ))
		rm -rf "$D"
		"$HEGN" demo init "$D" --port "$PORT" >/dev/null
		if "$HEGND" -c "$D/hegn.conf" -D 2>>"$T/hegnd.log"; then
			break
		fi
		tries=$((tries + 1))
		[ $tries -lt 5 ] || { echo "cannot start hegnd"; cat "$T/hegnd.log"; exit 1; }
	done
	URL="https://127.0.0.1:$PORT"
}

# curl as a party: as PARTY [curl args...]; writes the body to $T/body, prints the status.
as() {
	local party=$1
	shift
	curl -sS -o "$T/body" -w '%{http_code}' --cacert "$D/pki/ca.pem" \
		--cert "$D/pki/$party.pem" --key "$D/pki/$party.key" "$@"
}
# curl with no client certificate.
anon() {
	curl -sS -o "$T/body" -w '%{http_code}' --cacert "$D/pki/ca.pem" "$@"
}
body_has() { grep -q -- "$1" "$T/body"; }
body_lacks() { ! grep -q -- "$1" "$T/body"; }
json_field() { sed -n "s/.*\"$1\": *\"\\([^\"]*\\)\".*/\\1/p" "$T/body" | head -n 1; }
rows() { sqlite3 "$D/state/hegn.db" "SELECT count(*) FROM $1"; }
# Sanitizer reports from the daemon land in its log; any is a failure.
no_sanitizer_reports() {
	! grep -q 'ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:' "$T/hegnd.log"
}
# Flip every bit of the byte at offset OFF of FILE (so it always changes).
flip_byte() {
	local b
	b=$(dd if="$1" bs=1 skip="$2" count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
	printf "\\$(printf '%03o' $((b ^ 255)))" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}

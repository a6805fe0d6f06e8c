#!/bin/bash
# bench/run.sh [--quick] [--growth N] [--growth-only] [--ids MODE] [--citizens N] [--keep]:
# the benchmark of docs/performance.md.
#
# Builds nothing: run `make bench` first (in the build directory, or set
# HEGN_BUILDDIR).  Creates two demo worlds with ten extra providers (RSA 3072
# and P-256) in a temporary folder, starts hegnd on loopback for each, and
# runs bench/hegn-bench against it.  Every result is one key=value line; the
# last line is ratio=<end-to-end messages/s over RSA-3072 signatures/s>.
#
#   --quick      short runs (under two minutes in all)
#   --growth N   also measure submission with 1,000 and then N stored messages
#                (P-256 world, so filling the store is quick), and hegnd's RSS
#   --growth-only  the ceiling and the growth measurement only
#   --ids MODE   the message ids of the growth measurement (filling included):
#                seq (the default), uuid4 or none (hegnd makes them); see
#                hegn-bench
#   --citizens N the referrals of the growth measurement (filling included)
#                are about N citizens (default: nearly each a new one, and so
#                a new assignment)
#   --keep       keep the temporary folder (the worlds, databases and logs)
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=${HEGN_BUILDDIR:-$top}
hegn=$build/hegn
hegnd=$build/hegnd
bench=$build/bench/hegn-bench
quick=0
growth=0
growth_only=0
keep=0
ids=seq
citizens=0
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1 ;;
	--growth) growth=$2; shift ;;
	--growth-only) growth_only=1 ;;
	--keep) keep=1 ;;
	--ids) ids=$2; shift ;;
	--citizens) citizens=$2; shift ;;
	*) echo "usage: $0 [--quick] [--growth N] [--growth-only] [--ids MODE] [--citizens N] [--keep]" >&2
	   exit 2 ;;
	esac
	shift
done
for f in "$hegn" "$hegnd" "$bench"; do
	[ -x "$f" ] || { echo "run.sh: $f missing: run 'make bench'" >&2; exit 1; }
done

if [ $quick = 1 ]; then secs=3; warm=1; else secs=15; warm=3; fi
work=$(mktemp -d /tmp/hegn-bench.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	if [ $keep = 1 ]; then echo "# kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 20000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo $p; return; fi
	done
}

# start DIR: start hegnd for the world in DIR; sets $pid.
start() {
	"$hegnd" -c "$1/hegn.conf" -D 2>>"$1/hegnd.log"
	pid=$(cat "$1/run/hegnd.pid")
	pids+=("$pid")
}

stop() {
	kill "$pid" 2>/dev/null || true
	while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
}

# run DIR PORT ARGS...: one hegn-bench load run against a freshly started hegnd.
run() {
	local dir=$1 port=$2
	shift 2
	start "$dir"
	"$bench" "$@" --url "https://127.0.0.1:$port" --dir "$dir" --pid "$pid" \
	    --seconds "$secs" --warmup "$warm" | tee -a "$work/results.txt"
	stop
}

value() { sed -n "s/.*[ ]$1=\([^ ]*\).*/\1/p" | tail -1; }

echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -srm), $(nproc) cores, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

# Started as root, hegnd serves as an unprivileged account (privilege
# separation), which must reach the worlds.
chmod 711 "$work"
# The load comes from one party and one address: no rate or connection limit.
unlimit() {
	sed -i 's/^\[limits\]$/[limits]\nrequests_per_minute = 0\nconnections_per_ip = 0/' "$1/hegn.conf"
}

rport=$(free_port)
"$hegn" demo init "$work/rsa" --port "$rport" --providers 10 >/dev/null
unlimit "$work/rsa"
pport=$(free_port)
while [ "$pport" = "$rport" ]; do pport=$(free_port); done
"$hegn" demo init "$work/p256" --port "$pport" --providers 10 --keytype p256 >/dev/null
unlimit "$work/p256"

# The ceiling: private-key operations per second with a thread per core.
csecs=$([ $quick = 1 ] && echo 2 || echo 5)
"$bench" ceiling --key "$work/rsa/pki/provider-01.key" --seconds "$csecs" --label ceiling-rsa3072 |
    tee -a "$work/results.txt"
"$bench" ceiling --key "$work/p256/pki/provider-01.key" --seconds "$csecs" --label ceiling-p256 |
    tee -a "$work/results.txt"

if [ $growth_only = 0 ]; then
	for c in 1 8 32; do
		run "$work/rsa" "$rport" submit --clients $c --label submit-rsa-c$c
	done
	e2e_clients="8"
	[ $quick = 1 ] || e2e_clients="1 8 32"
	for c in $e2e_clients; do
		run "$work/rsa" "$rport" e2e --clients $c --label e2e-rsa-c$c
	done
	run "$work/rsa" "$rport" submit --clients 8 --attach 204800 --label submit-rsa-200k-c8
	run "$work/rsa" "$rport" e2e --clients 8 --attach 204800 --label e2e-rsa-200k-c8
	run "$work/p256" "$pport" submit --clients 8 --label submit-p256-c8
	run "$work/p256" "$pport" e2e --clients 8 --label e2e-p256-c8

	# Latency at half the peak submission rate (open loop).
	peak=$(grep 'label=submit-rsa-c' "$work/results.txt" | sed 's/.*msgs_per_s=\([^ ]*\).*/\1/' |
	    sort -g | tail -1)
	half=$(awk -v p="$peak" 'BEGIN { printf "%.0f", (p / 2 < 1 ? 1 : p / 2) }')
	run "$work/rsa" "$rport" submit --clients 8 --rate "$half" --label submit-rsa-halfpeak
fi

if [ "$growth" -gt 0 ]; then
	# Submission throughput with 1,000 stored messages and with $growth, in a
	# fresh P-256 world (cheap signatures: the store's share shows, and
	# filling it is quick).  Each measurement adds its own messages, so the
	# store is copied at 1,000 and at $growth, and every measurement starts
	# from one of the copies: small, large, small, large, so that a drift of
	# the machine falls on both.  growth_pct compares the means.
	gport=$(free_port)
	g=$work/growth
	"$hegn" demo init "$g" --port "$gport" --providers 10 --keytype p256 >/dev/null
	unlimit "$g"
	stored() { sqlite3 "$g/state/hegn.db" 'select count(*) from messages'; }
	for n in 1000 "$growth"; do
		start "$g"
		while [ "$(stored)" -lt "$n" ]; do
			left=$((n - $(stored)))
			"$bench" submit --url "https://127.0.0.1:$gport" --dir "$g" \
			    --pid "$pid" --clients 16 --warmup 0 --ids "$ids" --citizens "$citizens" \
			    --seconds "$(awk -v l=$left 'BEGIN { s = l / 1500; print (s < 0.2 ? 0.2 : (s > 30 ? 30 : s)) }')" \
			    --label fill >/dev/null
		done
		stop
		cp -a "$g/state" "$g/state-$n"
		sync
	done
	# hegnd's first audit checkpoint after a start reads the whole log into
	# its Merkle tree once: a longer warm-up keeps that out.
	w=$warm
	warm=$((warm > 5 ? warm : 5))
	suffix=
	[ "$ids" = seq ] || suffix="-ids-$ids"
	[ "$citizens" = 0 ] || suffix="$suffix-citizens$citizens"
	for round in 1 2; do
		for n in 1000 "$growth"; do
			rm -rf "$g/state"
			cp -a "$g/state-$n" "$g/state"
			# The copy on disk first: its writeback would otherwise
			# queue ahead of hegnd's syncs during the measurement.
			sync
			run "$g" "$gport" submit --clients 8 --ids "$ids" --citizens "$citizens" \
			    --label "growth-p256-stored$(stored)$suffix-round$round"
		done
	done
	warm=$w
	grep 'label=growth-p256-' "$work/results.txt" | sed 's/.*msgs_per_s=\([^ ]*\).*/\1/' |
	    awk 'NR % 2 == 1 { s += $1 } NR % 2 == 0 { l += $1 }
	        END { printf "growth_pct=%.1f\n", (l / s - 1) * 100 }'
fi

echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
[ $growth_only = 1 ] && exit 0
ceiling=$(grep 'label=ceiling-rsa3072' "$work/results.txt" | value signs_per_s)
e2e=$(grep 'label=e2e-rsa-c' "$work/results.txt" | sed 's/.*msgs_per_s=\([^ ]*\).*/\1/' |
    sort -g | tail -1)
sub=$(grep 'label=submit-rsa-c' "$work/results.txt" | sed 's/.*msgs_per_s=\([^ ]*\).*/\1/' |
    sort -g | tail -1)
# The same ratios from CPU time, which the other load on a shared machine
# disturbs less: hegnd's CPU per message against one signature's CPU.
sign_cpu=$(grep 'label=ceiling-rsa3072' "$work/results.txt" | value cpu_ms_per_sign)
for l in submit-rsa-c8 e2e-rsa-c8; do
	grep "label=$l " "$work/results.txt" | value cpu_ms_per_msg |
	    awk -v s="$sign_cpu" -v l="$l" '{ printf "cpu_ratio_%s=%.3f\n", l, s / $1 }'
done
awk -v s="$sub" -v c="$ceiling" 'BEGIN { printf "submit_ratio=%.3f\n", s / c }'
awk -v e="$e2e" -v c="$ceiling" 'BEGIN { printf "ratio=%.3f\n", e / c }'

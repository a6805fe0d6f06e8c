#!/bin/sh
# run-fuzzers.sh: run every fuzz target under libFuzzer for a bounded time.
#
# usage: tests/fuzz/run-fuzzers.sh BUILD-DIR [SECONDS [PARALLEL]]
#
# BUILD-DIR was configured with CC=clang --enable-fuzzing (docs/fuzzing.md).
# Each target starts from its committed seeds; what it finds goes to a
# scratch corpus and crash/leak artifacts to $FUZZ_OUT (default
# /tmp/hegn-fuzz), never into the source tree.  Prints one line per target
# with executions run and whether it found anything; exits 1 if any did.
set -eu

build=${1:?usage: run-fuzzers.sh BUILD-DIR [SECONDS [PARALLEL]]}
secs=${2:-60}
par=${3:-2}
top=$(cd "$(dirname "$0")/../.." && pwd)
out=${FUZZ_OUT:-/tmp/hegn-fuzz}
targets="message receipt cms_signed cms_sealed cert conf cpr medcom policy timeusage route keyd"

mkdir -p "$out"
export build secs top out
# shellcheck disable=SC2016 # expanded by the inner shell, from the exports
for t in $targets; do echo "$t"; done | xargs -P "$par" -I{} sh -c '
	t={}
	mkdir -p "$out/$t/corpus"
	"$build/tests/fuzz/fuzz_$t" -max_total_time="$secs" -rss_limit_mb=2048 \
	    -timeout=10 -print_final_stats=1 -artifact_prefix="$out/$t/" \
	    "$out/$t/corpus" "$top/tests/fuzz/corpus/$t" >"$out/$t/log" 2>&1 || true'

found=0
printf '%-12s %12s %8s %s\n' target executions exec/s findings
for t in $targets; do
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$t/log" | tail -n 1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$out/$t/log" | tail -n 1)
	arts=$(find "$out/$t" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' \
	    -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
	[ "$arts" -eq 0 ] || found=1
	printf '%-12s %12s %8s %s\n' "$t" "${execs:-?}" "${rate:-?}" \
	    "$([ "$arts" -eq 0 ] && echo none || echo "$arts in $out/$t/")"
done
exit "$found"

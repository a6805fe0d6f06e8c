#!/usr/bin/env bash
# Quickstart (2): the whole test suite, built with -Werror, AddressSanitizer and
# UndefinedBehaviorSanitizer, in _build/ (the source tree stays clean).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
"$top/scripts/deps.sh"
"$top/scripts/build.sh" "$top/_build" --enable-werror --enable-sanitizers
cd "$top/_build"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
if ! make -j"$(nproc)" check; then
	# Show what failed, so a CI log is enough to act on.
	for log in $(find tests -name '*.log'); do
		if grep -q '^:test-result: \(FAIL\|ERROR\)' "${log%.log}.trs" 2>/dev/null; then
			echo "==== $log"
			tail -n 80 "$log"
		fi
	done
	exit 1
fi

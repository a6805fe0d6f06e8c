#!/usr/bin/env bash
# The staff web page end to end in headless Chromium (Debian's chromium,
# driven by playwright-core from npm): tests/e2e/web.mjs.  Skips (77) when
# node, npm or chromium is missing, or playwright-core cannot be installed.
. "$(dirname "$0")/lib.sh"

E2E="${HEGN_TOP_SRCDIR:-$(dirname "$0")/../..}/tests/e2e"
if ! command -v node >/dev/null || [ ! -x /usr/bin/chromium ]; then
	echo "SKIP: node or /usr/bin/chromium missing (scripts/deps.sh installs them)"
	exit 77
fi
if [ ! -d "$E2E/node_modules/playwright-core" ]; then
	if ! command -v npm >/dev/null ||
	    ! (cd "$E2E" && npm ci --no-audit --no-fund --silent >"$T/npm.log" 2>&1); then
		echo "SKIP: cannot install playwright-core with npm"
		cat "$T/npm.log" 2>/dev/null || true
		exit 77
	fi
fi

start_demo
SHOTS="$T/screenshots"
mkdir -p "$SHOTS"
status=0
HEGN_URL="$URL" HEGN_DEMO="$D" HEGN_BIN="$HEGN" HEGN_SHOTS="$SHOTS" \
	node "$E2E/web.mjs" || status=$?
# The screenshots outlive the temporary directory for a look afterwards.
if mkdir -p "$E2E/screenshots-last" 2>/dev/null; then
	rm -f "$E2E/screenshots-last/"*.png
	cp "$SHOTS"/*.png "$E2E/screenshots-last/" 2>/dev/null || true
fi
check "the browser test passed" test "$status" = 0
check "no sanitizer reports from hegnd" no_sanitizer_reports
finish

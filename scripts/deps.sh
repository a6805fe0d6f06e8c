#!/usr/bin/env bash
# Install the Debian 12 packages hegn needs to build and test, when missing.
# One list, used by the Quickstart (demo.sh, test.sh) and by CI (.ci/run).
set -euo pipefail

PACKAGES=(
	# build
	build-essential autoconf automake libtool pkg-config
	# libraries (found by pkg-config in configure.ac; libharu and libcsv by header)
	libssl-dev libsodium-dev libmicrohttpd-dev libgnutls28-dev libsqlite3-dev
	libjansson-dev libinih-dev libcurl4-openssl-dev check libhpdf-dev libcsv-dev
	# the other party's software in tests, and tools the tests use
	openssl curl gpgsm sqlite3 ca-certificates python3 python3-aiosmtpd poppler-utils
	# the web page's browser test (tests/e2e): Debian's Chromium
	chromium
	# hardening (issue 8): tests/integration/test_tls.sh holds hegnd's TLS to testssl.sh
	testssl.sh
	# privilege separation: hegnd's optional seccomp filter (docs/PRIVSEP.md)
	libseccomp-dev
)
# ... and node with npm for playwright-core, unless a node (such as NodeSource's,
# which bundles npm and conflicts with Debian's npm package) is there already.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	PACKAGES+=(nodejs npm)
fi

missing=()
for p in "${PACKAGES[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
SUDO=
if [ "$(id -u)" != 0 ]; then
	SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"

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
	# privilege separation: hegnd's optional seccomp filter (docs/PRIVSEP.md)
	libseccomp-dev
)

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

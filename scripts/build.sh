#!/usr/bin/env bash
# Build hegn in the source tree (for the demo) or in a build folder given as $1
# with extra configure flags after it (for the tests).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
[ -x configure ] || ./autogen.sh >/dev/null 2>&1
if [ $# -ge 1 ]; then
	builddir=$1
	shift
	mkdir -p "$builddir"
	cd "$builddir"
	[ -f Makefile ] || "$top/configure" -q "$@"
else
	[ -f Makefile ] || ./configure -q
fi
make -s -j"$(nproc)" >/dev/null

#!/usr/bin/env bash
# Build hegn out of the source tree: build.sh BUILDDIR [configure flags...].
# The demo builds in build/, the tests in _build/ (with sanitizers).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
builddir=${1:?usage: build.sh BUILDDIR [configure flags...]}
shift
cd "$top"
[ -x configure ] || ./autogen.sh >/dev/null 2>&1
# An in-tree configuration blocks builds in other folders (automake's VPATH rule).
if [ -f config.status ]; then
	echo "build: the source tree was configured in place; cleaning it (make distclean)"
	make -s distclean >/dev/null 2>&1 || true
fi
mkdir -p "$builddir"
cd "$builddir"
if [ ! -f Makefile ]; then
	"$top/configure" -q "$@"
fi
make -s -j"$(nproc)" >/dev/null

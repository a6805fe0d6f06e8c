#!/usr/bin/env bash
# Operations (issue 8, item 8): contrib/systemd/hegnd.service has the
# sandboxing the issue asks for, and `systemd-analyze verify` accepts it
# (with the installed paths pointed at this build).  Without systemd-analyze
# only the first part runs.
set -euo pipefail
: "${HEGN_BUILDDIR:?run through make check, or set HEGN_BUILDDIR}"
: "${HEGN_TOP_SRCDIR:?run through make check, or set HEGN_TOP_SRCDIR}"
UNIT="$HEGN_TOP_SRCDIR/contrib/systemd/hegnd.service"
PASSES=0
FAILS=0
ok() { PASSES=$((PASSES + 1)); echo "ok - $*"; }
not_ok() { FAILS=$((FAILS + 1)); echo "not ok - $*"; }
has() { # has LINE: the unit has exactly this line
	if grep -qxF -- "$1" "$UNIT"; then ok "the unit says $1"; else not_ok "the unit says $1"; fi
}

has "Type=simple"
has "ExecStart=/usr/local/sbin/hegnd -c /etc/hegn/hegn.conf"
has "User=hegn"
has "ProtectSystem=strict"
has "ReadWritePaths=/var/lib/hegn"
has "PrivateTmp=yes"
has "NoNewPrivileges=yes"
has "CapabilityBoundingSet="
has "ProtectHome=yes"
has "ProtectKernelTunables=yes"
has "ProtectKernelModules=yes"
has "ProtectControlGroups=yes"
has "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX"
has "SystemCallFilter=@system-service"
if grep -qE '^(CapabilityBoundingSet|AmbientCapabilities)=.+' "$UNIT"; then
	not_ok "the unit grants no capability"
else
	ok "the unit grants no capability"
fi

if command -v systemd-analyze >/dev/null 2>&1; then
	T=$(mktemp -d /tmp/hegn-unit-XXXXXX)
	trap 'rm -rf "$T"' EXIT
	# verify checks that ExecStart's program exists and that Documentation's pages do.
	mkdir -p "$T/man/man5" "$T/man/man8"
	cp "$HEGN_TOP_SRCDIR/man/hegnd.8" "$T/man/man8/"
	cp "$HEGN_TOP_SRCDIR/man/hegn.conf.5" "$T/man/man5/"
	sed "s|/usr/local/sbin/hegnd|$HEGN_BUILDDIR/hegnd|" "$UNIT" >"$T/hegnd.service"
	if MANPATH="$T/man" systemd-analyze verify "$T/hegnd.service" >"$T/verify.txt" 2>&1 &&
	    ! grep -q . "$T/verify.txt"; then
		ok "systemd-analyze verify accepts the unit without a complaint"
	else
		not_ok "systemd-analyze verify accepts the unit without a complaint"
		sed 's/^/# /' "$T/verify.txt"
	fi
else
	echo "# SKIP: systemd-analyze is not installed; the unit was not verified"
fi

echo "$PASSES passed, $FAILS failed"
[ "$FAILS" -eq 0 ]

#!/usr/bin/env bash
# Checks the packages `make package` built (packaging/build.sh), and prints
# a summary; exits non-zero if any check failed. `make package-check` runs
# it. Needs root only to install missing tools with apt-get (lintian, rpm,
# man-db, groff-base) and for the optional unprivileged-run check.
#
# The .deb is installed into a scratch root with
#   dpkg --root=DIR --force-not-root --force-depends --force-script-chrootless
# so that the maintainer scripts run with DPKG_ROOT=DIR set: they see it and
# leave the host alone (no user created, no systemctl).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"
DIST=${DIST:-dist}
# shellcheck source=packaging/version.sh
source "$here/version.sh"
PKG_NAME=${PKG_NAME:-current}

results=()
failed=0
pass() { results+=("PASS  $1"); echo "--> PASS: $1"; }
fail() { results+=("FAIL  $1${2:+: $2}"); echo "--> FAIL: $1${2:+: $2}"; failed=1; }
skip() { results+=("SKIP  $1${2:+: $2}"); echo "--> SKIP: $1${2:+: $2}"; }
section() { printf '\n==== %s\n' "$1"; }

# Tools: install what is missing (Debian/Ubuntu, as root).
need=()
command -v dpkg-deb >/dev/null || need+=(dpkg)
command -v lintian >/dev/null || need+=(lintian)
command -v rpm >/dev/null || need+=(rpm)
command -v man >/dev/null || need+=(man-db)
command -v groff >/dev/null || need+=(groff-base)
command -v systemd-analyze >/dev/null || need+=(systemd)
if [ ${#need[@]} -gt 0 ]; then
	section "installing ${need[*]}"
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
	else
		echo "missing ${need[*]}; install them (apt-get install ${need[*]}) or run as root" >&2
	fi
fi

deb=$(ls -t "$DIST"/"$PKG_NAME"_*.deb 2>/dev/null | head -1) || true
rpmf=$(ls -t "$DIST"/"$PKG_NAME"-*.rpm 2>/dev/null | head -1) || true
[ -n "$deb" ] || { echo "no $DIST/${PKG_NAME}_*.deb; run make package" >&2; exit 1; }
[ -n "$rpmf" ] || { echo "no $DIST/$PKG_NAME-*.rpm; run make package" >&2; exit 1; }
echo "deb: $deb"
echo "rpm: $rpmf"
echo "expected version: $VERSION (commit $COMMIT)"

work=$(mktemp -d "${TMPDIR:-/tmp}/current-pkgcheck.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Files both packages must hold (the unit's directory differs).
common_files=(
	/usr/sbin/currentd
	/usr/bin/currentctl
	/etc/current/example.toml
	/usr/share/man/man8/currentd.8.gz
	/usr/share/man/man8/currentctl.8.gz
	/usr/share/man/man5/current.toml.5.gz
	/usr/share/bash-completion/completions/currentctl
	/usr/share/fish/vendor_completions.d/currentctl.fish
)
has_all() { # list-file path...
	local list=$1 missing=() p
	shift
	for p in "$@"; do grep -qxF "$p" "$list" || missing+=("$p"); done
	if [ ${#missing[@]} -gt 0 ]; then echo "missing: ${missing[*]}"; return 1; fi
}

section "dpkg-deb --info"
if dpkg-deb --info "$deb"; then
	ctrl=$(dpkg-deb --info "$deb")
	conff=$(dpkg-deb --info "$deb" conffiles 2>/dev/null || true)
	if ! grep -qx "/etc/current/example.toml" <<<"$conff"; then
		fail "deb info" "example.toml is not a conffile"
	elif ! grep -q "^ Depends:.*adduser" <<<"$ctrl"; then
		fail "deb info" "no Depends on adduser"
	else
		pass "deb info (control, conffiles, maintainer scripts)"
	fi
else
	fail "deb info" "dpkg-deb --info failed"
fi

section "dpkg-deb --contents"
if dpkg-deb --contents "$deb" | tee "$work/deb.contents"; then
	awk '{ sub(/^\./, "", $6); print $6 }' "$work/deb.contents" >"$work/deb.list"
	if why=$(has_all "$work/deb.list" "${common_files[@]}" /lib/systemd/system/currentd@.service \
		/usr/share/zsh/vendor-completions/_currentctl /usr/share/doc/"$PKG_NAME"/copyright \
		/usr/share/doc/"$PKG_NAME"/changelog.Debian.gz); then
		pass "deb contents"
	else
		fail "deb contents" "$why"
	fi
else
	fail "deb contents" "dpkg-deb --contents failed"
fi

section "lintian"
if command -v lintian >/dev/null; then
	set +e
	lintian --info --display-info --pedantic --no-tag-display-limit "$deb" 2>&1 | tee "$work/lintian.out"
	set -e
	if grep -q '^E: ' "$work/lintian.out"; then
		fail "lintian" "$(grep -c '^E: ' "$work/lintian.out") error(s)"
	else
		pass "lintian: no errors ($(grep -c '^W: ' "$work/lintian.out" || true) warnings, $(grep -c '^[IPX]: ' "$work/lintian.out" || true) info/pedantic/experimental)"
	fi
else
	fail "lintian" "lintian is not installed"
fi

section "rpm -qpl"
if command -v rpm >/dev/null; then
	if rpm -qpil "$rpmf" 2>/dev/null | tee "$work/rpm.info" && rpm -qpl "$rpmf" >"$work/rpm.list" 2>/dev/null; then
		cfg=$(rpm -qp --configfiles "$rpmf" 2>/dev/null)
		scripts=$(rpm -qp --scripts "$rpmf" 2>/dev/null)
		if ! why=$(has_all "$work/rpm.list" "${common_files[@]}" /usr/lib/systemd/system/currentd@.service \
			/usr/share/zsh/site-functions/_currentctl); then
			fail "rpm contents" "$why"
		elif ! grep -qx /etc/current/example.toml <<<"$cfg"; then
			fail "rpm contents" "example.toml is not %config"
		elif ! grep -q "useradd -r" <<<"$scripts"; then
			fail "rpm contents" "no useradd in the scripts"
		else
			pass "rpm contents, %config(noreplace), scripts"
		fi
		echo "config files: $cfg"
	else
		fail "rpm contents" "rpm -qpl failed"
	fi
else
	fail "rpm contents" "rpm is not installed"
fi

section "install the .deb into a scratch root"
R="$work/root"
mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates" "$R/var/lib/dpkg/triggers"
touch "$R/var/lib/dpkg/status" "$R/var/lib/dpkg/available"
dpkg_root() { dpkg --root="$R" --force-not-root --force-depends --force-script-chrootless --log=/dev/null "$@"; }
if dpkg_root -i "$deb" && dpkg_root -s "$PKG_NAME" | grep -q '^Status: install ok installed'; then
	pass "dpkg --root install (maintainer scripts ran with DPKG_ROOT)"
	# A conffile the operator edited survives a reinstall.
	echo "# edited by the operator" >>"$R/etc/current/example.toml"
	if dpkg_root --force-confold -i "$deb" >/dev/null && grep -q "edited by the operator" "$R/etc/current/example.toml"; then
		pass "conffile kept on reinstall"
	else
		fail "conffile kept on reinstall"
	fi
else
	fail "dpkg --root install"
fi

section "installed binaries report their version"
if [ -x "$R/usr/sbin/currentd" ]; then
	out=$("$R/usr/sbin/currentd" --version 2>&1) || true
	echo "currentd --version: $out"
	if grep -qF "$VERSION" <<<"$out" && grep -qF "$COMMIT" <<<"$out"; then
		pass "currentd --version: $out"
	else
		fail "currentd --version" "want $VERSION and $COMMIT in: $out"
	fi
	# `currentctl version` prints its own line first, then asks the daemon
	# (none runs here, so it may exit non-zero).
	out=$(CURRENT_INTERFACE=none "$R/usr/bin/currentctl" version 2>&1) || true
	echo "currentctl version: $out"
	first=$(head -1 <<<"$out")
	if grep -qF "$VERSION" <<<"$first" && grep -qF "$COMMIT" <<<"$first"; then
		pass "currentctl version: $first"
	else
		fail "currentctl version" "want $VERSION and $COMMIT in: $first"
	fi
else
	fail "installed binaries" "not installed"
fi

section "man pages render"
mfail=()
for m in man8/currentd.8.gz man8/currentctl.8.gz man5/current.toml.5.gz; do
	f="$R/usr/share/man/$m"
	if [ ! -f "$f" ]; then mfail+=("$m missing"); continue; fi
	if ! warn=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$f" 2>&1 >"$work/man.out"); then
		mfail+=("$m: man failed")
	elif [ -n "$warn" ]; then
		mfail+=("$m: $warn")
	elif [ ! -s "$work/man.out" ]; then
		mfail+=("$m: empty")
	fi
done
if [ ${#mfail[@]} -eq 0 ]; then pass "man -l renders currentd(8), currentctl(8), current.toml(5) without warnings"; else fail "man pages" "${mfail[*]}"; fi

section "systemd-analyze verify"
U="$work/units"
mkdir -p "$U"
unit="$R/lib/systemd/system/currentd@.service"
# The unit as installed, but pointing at the scratch root's binary; the
# Documentation= man pages are looked up in the scratch root.
sed "s|/usr/sbin/currentd|$R/usr/sbin/currentd|g" "$unit" >"$U/currentd@.service"
ln -sf currentd@.service "$U/currentd@current0.service"
if out=$(MANPATH="$R/usr/share/man:" systemd-analyze verify "$U/currentd@current0.service" 2>&1) && [ -z "$out" ]; then
	pass "systemd-analyze verify currentd@current0.service"
else
	echo "$out"
	fail "systemd-analyze verify" "$(head -1 <<<"$out")"
fi
if out=$(systemd-analyze security --offline=true --threshold=30 --no-pager "$U/currentd@current0.service" 2>&1); then
	pass "systemd-analyze security: $(tail -1 <<<"$out" | sed 's/^→ //')"
else
	echo "$out"
	fail "systemd-analyze security" "$(tail -1 <<<"$out")"
fi

section "completion scripts"
cfail=()
bash -n "$R/usr/share/bash-completion/completions/currentctl" || cfail+=(bash)
if command -v zsh >/dev/null; then zsh -n "$R/usr/share/zsh/vendor-completions/_currentctl" || cfail+=(zsh); fi
if command -v fish >/dev/null; then fish -n "$R/usr/share/fish/vendor_completions.d/currentctl.fish" || cfail+=(fish); fi
if [ ${#cfail[@]} -eq 0 ]; then
	pass "completion scripts parse (bash$(command -v zsh >/dev/null && echo ", zsh")$(command -v fish >/dev/null && echo ", fish"))"
else
	fail "completion scripts" "${cfail[*]}"
fi

section "maintainer scripts"
sfail=()
for s in "$R"/var/lib/dpkg/info/"$PKG_NAME".{postinst,prerm,postrm}; do
	sh -n "$s" || sfail+=("$(basename "$s")")
done
if [ ${#sfail[@]} -eq 0 ]; then pass "deb maintainer scripts parse"; else fail "deb maintainer scripts" "${sfail[*]}"; fi

section "currentd as an unprivileged user with CAP_NET_ADMIN only"
# What the unit does (User=current, AmbientCapabilities=CAP_NET_ADMIN,
# NoNewPrivileges): run the installed daemon as nobody in a private network
# namespace, check that it brings up the TUN, address and route, reloads,
# and cleans up on SIGTERM. Needs root, unshare and setpriv.
if [ "$(id -u)" != 0 ] || ! command -v unshare >/dev/null || ! command -v setpriv >/dev/null ||
	! unshare -n -m true 2>/dev/null; then
	skip "unprivileged run" "needs root, unshare -n -m and setpriv"
else
	T="$work/unpriv"
	mkdir -p "$T/state"
	chmod 0755 "$work" "$T"
	"$R/usr/bin/currentctl" genkey >"$T/k.key"
	peer=$("$R/usr/bin/currentctl" genkey | "$R/usr/bin/currentctl" pubkey)
	cat >"$T/t0.toml" <<TOML
[interface]
name = "cpkgchk0"
private_key_file = "$T/k.key"
listen_port = 51900
addresses = ["10.77.0.1/24"]
state_dir = "$T/state"
[[peer]]
name = "b"
public_key = "$peer"
endpoint = "192.0.2.1:51900"
allowed_ips = ["10.77.0.2/32"]
transport = "tcp"
TOML
	chmod 0600 "$T/k.key"
	chmod 0700 "$T/state"
	# The unit's RuntimeDirectory=current: the control socket's directory,
	# owned by the service user.
	mkdir -m 0700 "$T/run"
	chown 65534:65534 "$T/k.key" "$T/state" "$T/run"
	# /dev/net/tun is 0666 on a normal system; containers often make it
	# 0600, so the namespace gets a 0666 node of its own.
	mknod -m 0666 "$T/tun" c 10 200
	set +e
	out=$(timeout 20 unshare -n -m sh -c '
		mount --bind "$1/tun" /dev/net/tun || exit 90
		exec setpriv --reuid=65534 --regid=65534 --clear-groups \
			--inh-caps=-all,+net_admin --ambient-caps=-all,+net_admin \
			--bounding-set=-all,+net_admin --no-new-privs sh -c "
			\"\$0\" -c \"\$1/t0.toml\" --ctl-dir \"\$1/run\" & pid=\$!
			sleep 2
			ip -o addr show cpkgchk0 | grep -q 10.77.0.1/24 || { echo NO-ADDR; kill \$pid; exit 91; }
			ip route | grep -q \"10.77.0.2 dev cpkgchk0\" || { echo NO-ROUTE; kill \$pid; exit 92; }
			kill -HUP \$pid; sleep 0.5
			kill -TERM \$pid; wait \$pid; rc=\$?
			ip link show cpkgchk0 >/dev/null 2>&1 && { echo LEFT-BEHIND; exit 93; }
			exit \$rc" "$2" "$1"
	' sh "$T" "$R/usr/sbin/currentd" 2>&1)
	rc=$?
	set -e
	echo "$out"
	if [ $rc = 0 ] && grep -q 'msg=reloaded' <<<"$out" && grep -q 'msg=stopped' <<<"$out"; then
		pass "currentd runs as uid 65534 with CAP_NET_ADMIN only (TUN, address, route, SIGHUP, clean stop)"
	elif [ $rc = 90 ]; then
		skip "unprivileged run" "cannot bind-mount /dev/net/tun in a mount namespace"
	else
		fail "unprivileged run" "exit $rc"
	fi
fi

printf '\n==== summary (%s, %s)\n' "$(basename "$deb")" "$(basename "$rpmf")"
printf '%s\n' "${results[@]}"
if [ $failed = 0 ]; then echo "ALL CHECKS PASSED"; else echo "SOME CHECKS FAILED"; fi
exit $failed

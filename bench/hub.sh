#!/usr/bin/env bash
# The hub at scale (issue 17): one real currentd hub in a namespace, and
# bench/cmd/hubload with N peers in another, joined by a veth pair. Needs
# root. See bench/README.md ("Hub at scale"). The last line of output is
# machine-readable:
#
#   hub peers=1000 agg_vs_single=R jain=J update_loss=L restart10k_s=S resumed=F
#
# Environment (defaults in brackets):
#   HUB_PEERS          peers of the load figures [1000]
#   HUB_RESTART_PEERS  peer counts of the restart figures [1000,10000]
#   HUB_DURATION       length of each load phase [10s]
#   HUB_UPDATE         every peer's epoch update interval in the loss run [5s]
#   HUB_LOSS_LOAD      load of the paced runs, percent of the measured aggregate [25]
#   HUB_SUITE          cipher suite [mls-xwing-ed25519]
#   HUB_KEEP           1 keeps the work directory (logs, state) [0]
#   HUB_PROFILE        1 writes currentd CPU profiles (WORK/hub-N/cpu.pprof, restarts cpu-1.pprof ...; implies HUB_KEEP=1) [0]
#   HUB_ARGS           more hubload run flags (e.g. -unpaced-only)
#   HUB_TMP            where the work directory (and the hub's state_dir) is made [/tmp]
set -euo pipefail

PEERS=${HUB_PEERS:-1000}
RESTART=${HUB_RESTART_PEERS-1000,10000}
DUR=${HUB_DURATION:-10s}
UPDATE=${HUB_UPDATE:-5s}
LOSS_LOAD=${HUB_LOSS_LOAD:-25}
SUITE=${HUB_SUITE:-mls-xwing-ed25519}
KEEP=${HUB_KEEP:-0}
PROFILE=""
if [ "${HUB_PROFILE:-0}" = 1 ]; then PROFILE=-profile KEEP=1; fi

die() { printf 'bench-hub: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (network namespaces, TUN devices): run 'sudo make bench-hub'"
for tool in ip go; do command -v "$tool" >/dev/null || die "$tool not found"; done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=netns.sh
. "$ROOT/bench/netns.sh"
WORK=$(mktemp -d "${HUB_TMP:-/tmp}/current-hub.XXXXXX")
NSH=curhub-h-$$
NSP=curhub-p-$$
PID=""

cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	if [ -n "$PID" ]; then
		kill -TERM "$PID" 2>/dev/null
		wait "$PID" 2>/dev/null
	fi
	# hubload starts currentd and its sink inside the hub's namespace;
	# whatever is still there is ours.
	for ns in "$NSH" "$NSP"; do
		if ip netns list | grep -qw "$ns"; then
			for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
			ip netns del "$ns"
		fi
	done
	if [ "$KEEP" = 1 ]; then echo "bench-hub: kept $WORK" >&2; else rm -rf "$WORK"; fi
	[ "$rc" = 0 ] || echo "bench-hub: cleaned up (namespaces $NSH $NSP, $WORK)" >&2
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

printf '== building currentd and hubload\n' >&2
cd "$ROOT"
mkdir -p "$WORK/bin"
go build -o "$WORK/bin/" ./cmd/currentd ./bench/cmd/hubload || die "go build failed"

printf '== namespaces %s (hub) and %s (peers), veth 192.0.2.1 <-> 192.0.2.2\n' "$NSH" "$NSP" >&2
veth_pair "$NSH" "$NSP" vhh vhp
# Every peer has its own source address: 198.18.0.0/15 is local in the
# peers' namespace (any address in it can be bound) and routed there
# from the hub's.
ip -n "$NSP" route add local 198.18.0.0/15 dev lo
ip -n "$NSH" route add 198.18.0.0/15 via 192.0.2.2

# One socket per peer: the open-file limit (Go raises the soft limit to
# the hard one) must hold the largest peer count and a margin.
[ "$(ulimit -Hn)" -gt 11000 ] || die "open-file limit $(ulimit -Hn) is below 11000 (one socket per peer)"
ip netns exec "$NSP" "$WORK/bin/hubload" run -ns-hub "$NSH" -currentd "$WORK/bin/currentd" -work "$WORK" \
	-suite "$SUITE" -peers "$PEERS" -restart-peers "$RESTART" -duration "$DUR" -update "$UPDATE" -loss-load "$LOSS_LOAD" $PROFILE ${HUB_ARGS:-} &
PID=$!
wait "$PID"
PID=""

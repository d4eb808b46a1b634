#!/bin/sh
# current demo: two VPN endpoints in two network namespaces on this machine.
#
#   sudo make demo        (or: sudo scripts/demo.sh)
#
# What it does, step by step:
#   1. builds currentd, currentctl and a tiny ping helper into a temp dir;
#   2. creates namespaces "cur-demo-a" and "cur-demo-b" joined by a veth
#      cable (192.0.2.1 <-> 192.0.2.2): the "internet" between two hosts;
#   3. generates a key pair per side (currentctl genkey / pubkey) and writes
#      each side's configuration (tunnel addresses 10.77.0.1 and 10.77.0.2,
#      fd77::1 and fd77::2, transport UDP);
#   4. starts currentd in each namespace and pings across the tunnel;
#   5. asks for a manual epoch update (currentctl rekey: fresh MLS keys)
#      and pings again;
#   6. shows each side's status (currentctl show) and tears everything
#      down, also when interrupted (Ctrl-C).
# Nothing touches the host's own network: all traffic stays inside the
# two namespaces.
set -eu

if [ "$(id -u)" != 0 ]; then
	echo "demo: needs root (network namespaces and TUN devices): run 'sudo make demo'" >&2
	exit 1
fi
for tool in ip go; do
	command -v "$tool" >/dev/null || { echo "demo: $tool not found" >&2; exit 1; }
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/current-demo.XXXXXX)
NSA=cur-demo-a
NSB=cur-demo-b
PIDA=""
PIDB=""

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

cleanup() {
	set +e
	step "Tearing down"
	for pid in $PIDA $PIDB; do kill -TERM "$pid" 2>/dev/null; done
	for pid in $PIDA $PIDB; do wait "$pid" 2>/dev/null; done
	ip netns del "$NSA" 2>/dev/null
	ip netns del "$NSB" 2>/dev/null
	rm -rf "$WORK"
	echo "removed namespaces $NSA and $NSB and $WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "Building currentd, currentctl and a ping helper"
cd "$ROOT"
go build -o "$WORK/currentd" ./cmd/currentd
go build -o "$WORK/currentctl" ./cmd/currentctl
go build -o "$WORK/demoping" ./scripts/demoping
echo "binaries in $WORK"

step "Creating two network namespaces joined by a veth pair"
ip netns del "$NSA" 2>/dev/null || true
ip netns del "$NSB" 2>/dev/null || true
ip netns add "$NSA"
ip netns add "$NSB"
ip link add cdemo-a netns "$NSA" type veth peer name cdemo-b netns "$NSB"
ip -n "$NSA" addr add 192.0.2.1/24 dev cdemo-a
ip -n "$NSB" addr add 192.0.2.2/24 dev cdemo-b
for ns in "$NSA" "$NSB"; do ip -n "$ns" link set lo up; done
ip -n "$NSA" link set cdemo-a up
ip -n "$NSB" link set cdemo-b up
echo "$NSA: 192.0.2.1  <-- veth -->  $NSB: 192.0.2.2"

step "Generating keys (currentctl genkey, currentctl pubkey)"
for side in a b; do
	mkdir -m 700 "$WORK/$side" "$WORK/$side/state"
	(umask 077; "$WORK/currentctl" genkey > "$WORK/$side/private.key")
	"$WORK/currentctl" pubkey < "$WORK/$side/private.key" > "$WORK/$side/public.key"
	echo "side $side public key: $(cut -c1-40 "$WORK/$side/public.key")..."
done

config() { # side addr4 addr6 peer-side peer-endpoint peer4 peer6
	cat > "$WORK/$1/current.toml" <<CFG
[interface]
name = "cur0"
private_key_file = "$WORK/$1/private.key"
listen_port = 51900
addresses = ["$2", "$3"]
state_dir = "$WORK/$1/state"

[[peer]]
name = "side-$4"
public_key = "$(cat "$WORK/$4/public.key")"
endpoint = "$5"
allowed_ips = ["$6", "$7"]
transport = "udp"
persistent_keepalive = "25s"
CFG
}
config a 10.77.0.1/24 fd77::1/64 b 192.0.2.2:51900 10.77.0.2/32 fd77::2/128
config b 10.77.0.2/24 fd77::2/64 a 192.0.2.1:51900 10.77.0.1/32 fd77::1/128
echo "configuration of side a:"
sed 's/^/    /' "$WORK/a/current.toml"

step "Starting currentd in each namespace"
# Each side gets its own control socket directory: both interfaces are
# called cur0 and the namespaces share the host's /run.
mkdir -p "$WORK/a/run" "$WORK/b/run"
ip netns exec "$NSA" "$WORK/currentd" -c "$WORK/a/current.toml" --ctl-dir "$WORK/a/run" > "$WORK/a/log" 2>&1 &
PIDA=$!
ip netns exec "$NSB" "$WORK/currentd" -c "$WORK/b/current.toml" --ctl-dir "$WORK/b/run" > "$WORK/b/log" 2>&1 &
PIDB=$!
ctl() { # side args...
	side=$1; shift
	"$WORK/currentctl" --socket "$WORK/$side/run/cur0.sock" "$@"
}
echo "currentd pids: side a $PIDA, side b $PIDB (logs: $WORK/a/log, $WORK/b/log)"

ping_across() { # ns addr
	tries=0
	until ip netns exec "$1" "$WORK/demoping" "$2" 1 >/dev/null 2>&1; do
		tries=$((tries + 1))
		[ $tries -lt 40 ] || { echo "no answer from $2"; tail -20 "$WORK/a/log" "$WORK/b/log"; exit 1; }
		sleep 0.25
	done
	ip netns exec "$1" "$WORK/demoping" "$2" 3
}

step "Pinging across the tunnel (the first ping waits for the handshake)"
echo "side a -> 10.77.0.2:"; ping_across "$NSA" 10.77.0.2
echo "side b -> fd77::1:";   ping_across "$NSB" fd77::1

step "Manual epoch update (currentctl rekey on side a): new MLS epoch, fresh keys"
echo "    \$ currentctl rekey --all"
ctl a rekey --all | sed 's/^/    /'
echo "side a -> 10.77.0.2 under the new keys:"; ping_across "$NSA" 10.77.0.2

step "Status of both sides (currentctl show)"
for side in a b; do
	echo "side $side:"
	ctl "$side" show | sed 's/^/    /'
done
echo "routes through the tunnel in $NSA:"
ip -n "$NSA" route show dev cur0 | sed 's/^/    /'

step "Done: the tunnel carried IPv4 and IPv6 and changed keys without interruption"

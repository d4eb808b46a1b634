# Sourced by the bench harnesses (tunnel.sh, hub.sh): the two network
# namespaces they measure in.

# veth_pair NSA NSB IFA IFB creates namespaces NSA and NSB joined by a veth
# pair IFA (192.0.2.1/24, in NSA) <-> IFB (192.0.2.2/24, in NSB), MTU
# 1500, every link up.
veth_pair() {
	ip netns add "$1"
	ip netns add "$2"
	ip link add "$3" netns "$1" type veth peer name "$4" netns "$2"
	ip -n "$1" addr add 192.0.2.1/24 dev "$3"
	ip -n "$2" addr add 192.0.2.2/24 dev "$4"
	for ns in "$1" "$2"; do ip -n "$ns" link set lo up; done
	ip -n "$1" link set "$3" up
	ip -n "$2" link set "$4" up
}

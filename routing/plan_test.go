package routing

import (
	"net/netip"
	"reflect"
	"testing"
)

// TestPlanFullTunnel checks, for every platform, what a default route
// through the tunnel becomes.
func TestPlanFullTunnel(t *testing.T) {
	v4, v6 := netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")
	pp := func(s ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, x := range s {
			out = append(out, netip.MustParsePrefix(x))
		}
		return out
	}
	linuxRules := func(mark uint32) []policyRule {
		return []policyRule{
			{Priority: 31900, Table: 254, SuppressPrefixlen: 0},
			{Priority: 31901, Table: int(mark), SuppressPrefixlen: -1, Mark: mark, Invert: true},
		}
	}
	for _, tc := range []struct {
		name string
		goos string
		p    netip.Prefix
		mark uint32
		want fullTunnelPlan
	}{
		{"linux v4", "linux", v4, 0, fullTunnelPlan{Routes: pp("0.0.0.0/0"), Table: 51900, Rules: linuxRules(51900)}},
		{"linux v6 own mark", "linux", v6, 0xca00, fullTunnelPlan{Routes: pp("::/0"), Table: 0xca00, Rules: linuxRules(0xca00)}},
		{"darwin v4", "darwin", v4, 0, fullTunnelPlan{Routes: pp("0.0.0.0/1", "128.0.0.0/1"), EndpointRoutes: true}},
		{"darwin v6", "darwin", v6, 7, fullTunnelPlan{Routes: pp("::/1", "8000::/1"), EndpointRoutes: true}},
		{"freebsd v4", "freebsd", v4, 0, fullTunnelPlan{Routes: pp("0.0.0.0/1", "128.0.0.0/1"), EndpointRoutes: true}},
		{"freebsd v6", "freebsd", v6, 0, fullTunnelPlan{Routes: pp("::/1", "8000::/1"), EndpointRoutes: true}},
	} {
		got, err := planFullTunnel(tc.goos, tc.p, tc.mark)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
}

// TestPlanHalvesCoverDefault checks that the two halves of the split
// meet without a gap or overlap at the middle of the address space and
// reach both of its ends, and are each more specific than the underlay's
// default route, so that they win over it.
func TestPlanHalvesCoverDefault(t *testing.T) {
	for _, tc := range []struct {
		p                   string
		first, midLo, midHi string
		last                string
	}{
		{"0.0.0.0/0", "0.0.0.0", "127.255.255.255", "128.0.0.0", "255.255.255.255"},
		{"::/0", "::", "7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "8000::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
	} {
		plan, err := planFullTunnel("freebsd", netip.MustParsePrefix(tc.p), 0)
		if err != nil {
			t.Fatal(err)
		}
		lo, hi := plan.Routes[0], plan.Routes[1]
		if lo.Bits() != 1 || hi.Bits() != 1 || lo.Overlaps(hi) {
			t.Errorf("%s: halves %v %v", tc.p, lo, hi)
		}
		for _, in := range []struct {
			half netip.Prefix
			a    string
		}{{lo, tc.first}, {lo, tc.midLo}, {hi, tc.midHi}, {hi, tc.last}} {
			if !in.half.Contains(netip.MustParseAddr(in.a)) {
				t.Errorf("%s: %s not in %v", tc.p, in.a, in.half)
			}
		}
	}
}

func TestPlanFullTunnelRejects(t *testing.T) {
	for _, tc := range []struct {
		goos string
		p    string
	}{
		{"linux", "10.0.0.0/8"},
		{"darwin", "::ffff:0.0.0.0/0"},
		{"freebsd", "192.0.2.1/32"},
		{"plan9", "0.0.0.0/0"},
	} {
		if _, err := planFullTunnel(tc.goos, netip.MustParsePrefix(tc.p), 0); err == nil {
			t.Errorf("%s %s: no error", tc.goos, tc.p)
		}
	}
	if _, err := planFullTunnel("linux", netip.Prefix{}, 0); err == nil {
		t.Error("invalid prefix: no error")
	}
}

func TestAddressRoutesSubnet(t *testing.T) {
	for goos, want := range map[string]bool{"linux": true, "freebsd": true, "darwin": false} {
		if got := addressRoutesSubnet(goos); got != want {
			t.Errorf("%s: %v, want %v", goos, got, want)
		}
	}
}

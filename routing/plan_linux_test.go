package routing

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestFullTunnelRulesFromPlan checks that the netlink rules made from the
// plan are the two rules this package always installed, field for field.
func TestFullTunnelRulesFromPlan(t *testing.T) {
	for _, tc := range []struct {
		p    string
		fam  int
		mark uint32
	}{{"0.0.0.0/0", netlink.FAMILY_V4, 51900}, {"::/0", netlink.FAMILY_V6, 0xca00}} {
		suppress := netlink.NewRule()
		suppress.Family = tc.fam
		suppress.Priority = 31900
		suppress.Table = unix.RT_TABLE_MAIN
		suppress.SuppressPrefixlen = 0
		mask := uint32(0xffffffff)
		mark := netlink.NewRule()
		mark.Family = tc.fam
		mark.Priority = 31901
		mark.Table = int(tc.mark)
		mark.Mark = tc.mark
		mark.Mask = &mask
		mark.Invert = true
		want := []*netlink.Rule{suppress, mark}
		got := fullTunnelRules(netip.MustParsePrefix(tc.p), tc.mark)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v %+v\nwant %+v %+v", tc.p, got[0], got[1], want[0], want[1])
		}
	}
	if r := fullTunnelRules(netip.MustParsePrefix("10.0.0.0/8"), 51900); r != nil {
		t.Errorf("rules for a route that is not a default: %v", r)
	}
}

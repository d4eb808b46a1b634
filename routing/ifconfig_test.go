package routing

import (
	"net/netip"
	"reflect"
	"testing"
)

// TestIfconfigArgs compares the argument lists with what wg-quick's
// darwin and freebsd backends run.
func TestIfconfigArgs(t *testing.T) {
	v4, v6 := netip.MustParsePrefix("10.9.0.1/24"), netip.MustParsePrefix("fd00:9::1/64")
	for _, tc := range []struct {
		name string
		got  []string
		want []string
	}{
		{"darwin add v4", ifconfigAddAddress("darwin", "utun4", v4), []string{"utun4", "inet", "10.9.0.1/24", "10.9.0.1", "alias"}},
		{"darwin add v6", ifconfigAddAddress("darwin", "utun4", v6), []string{"utun4", "inet6", "fd00:9::1/64", "alias"}},
		{"freebsd add v4", ifconfigAddAddress("freebsd", "current0", v4), []string{"current0", "inet", "10.9.0.1/24", "alias"}},
		{"freebsd add v6", ifconfigAddAddress("freebsd", "current0", v6), []string{"current0", "inet6", "fd00:9::1/64", "alias"}},
		{"del v4", ifconfigDelAddress("utun4", v4), []string{"utun4", "inet", "10.9.0.1", "-alias"}},
		{"del v6", ifconfigDelAddress("current0", v6), []string{"current0", "inet6", "fd00:9::1", "-alias"}},
		{"mtu", ifconfigMTU("utun4", 1420), []string{"utun4", "mtu", "1420"}},
		{"up", ifconfigUp("utun4"), []string{"utun4", "up"}},
		{"down", ifconfigDown("utun4"), []string{"utun4", "down"}},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}

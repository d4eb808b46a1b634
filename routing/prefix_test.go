package routing

import (
	"net"
	"net/netip"
	"testing"
)

func TestConfiguredAs(t *testing.T) {
	nets := []*net.IPNet{
		{IP: net.ParseIP("2001:db8::1"), Mask: net.CIDRMask(64, 128)},
		{IP: net.ParseIP("192.0.2.1"), Mask: net.CIDRMask(24, 32)}, // 16-byte, mapped form
		{IP: net.IPv4(198, 51, 100, 7).To4(), Mask: net.CIDRMask(32, 32)},
	}
	for in, want := range map[string]string{
		"2001:db8::1":      "2001:db8::1/64",
		"192.0.2.1":        "192.0.2.1/24",
		"198.51.100.7":     "198.51.100.7/32",
		"192.0.2.2":        "invalid Prefix",
		"::ffff:192.0.2.1": "invalid Prefix", // callers pass the unmapped form
	} {
		if got := configuredAs(netip.MustParseAddr(in), nets); got.String() != want {
			t.Errorf("configuredAs(%s) = %s, want %s", in, got, want)
		}
	}
	if kernelPrefix(netip.MustParsePrefix("::ffff:10.0.0.0/104")) == nil {
		t.Error("kernelPrefix accepted an IPv4-mapped prefix")
	}
	if kernelPrefix(netip.Prefix{}) == nil || kernelPrefix(netip.MustParsePrefix("10.0.0.0/8")) != nil {
		t.Error("kernelPrefix: invalid accepted or a plain prefix refused")
	}
}

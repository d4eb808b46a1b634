package tunnel

import (
	"net/netip"
	"testing"
)

func TestPacketAddrs(t *testing.T) {
	for _, tc := range []struct{ src, dst string }{
		{"10.0.0.1", "10.0.0.2"},
		{"fd00::1", "fd00::2"},
	} {
		s, d, ok := packetAddrs(ipPacket(tc.src, tc.dst, "x"))
		if !ok || s != netip.MustParseAddr(tc.src) || d != netip.MustParseAddr(tc.dst) {
			t.Errorf("%s→%s: got %v %v %v", tc.src, tc.dst, s, d, ok)
		}
	}
	for _, bad := range [][]byte{nil, {0x45}, make([]byte, 19), append([]byte{0x60}, make([]byte, 38)...), {0x20, 0, 0, 0}} {
		if _, _, ok := packetAddrs(bad); ok {
			t.Errorf("accepted %x", bad)
		}
	}
}

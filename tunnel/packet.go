package tunnel

import "net/netip"

// packetAddrs returns the source and destination of an IPv4 or IPv6 packet,
// or ok == false if the header is too short or of another version. Nothing
// else of the header is checked: the kernel validates what we write to the
// TUN, and a packet with a bogus destination simply finds no peer.
func packetAddrs(p []byte) (src, dst netip.Addr, ok bool) {
	if len(p) == 0 {
		return src, dst, false
	}
	switch p[0] >> 4 {
	case 4:
		if len(p) < 20 {
			return src, dst, false
		}
		return netip.AddrFrom4([4]byte(p[12:16])), netip.AddrFrom4([4]byte(p[16:20])), true
	case 6:
		if len(p) < 40 {
			return src, dst, false
		}
		return netip.AddrFrom16([16]byte(p[8:24])), netip.AddrFrom16([16]byte(p[24:40])), true
	}
	return src, dst, false
}

package routing

import (
	"errors"
	"net"
	"net/netip"
)

// kernelPrefix rejects what the kernel would misread: an IPv4-mapped IPv6
// prefix would be installed as an IPv6 one that no IPv4 packet uses. (A
// netip.Prefix cannot hold a zone: PrefixFrom drops it.)
func kernelPrefix(p netip.Prefix) error {
	switch {
	case !p.IsValid():
		return errors.New("invalid prefix")
	case p.Addr().Is4In6():
		return errors.New("IPv4-mapped IPv6 prefix; use the IPv4 form")
	}
	return nil
}

// configuredAs returns how a is configured among the interface's
// addresses nets (as the kernel lists them, IPv4 possibly mapped), or the
// zero Prefix if it is not there.
func configuredAs(a netip.Addr, nets []*net.IPNet) netip.Prefix {
	for _, n := range nets {
		xa, ok := netip.AddrFromSlice(n.IP)
		if !ok || xa.Unmap() != a {
			continue
		}
		ones, _ := n.Mask.Size()
		return netip.PrefixFrom(a, ones)
	}
	return netip.Prefix{}
}

package routing

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// unhex decodes a byte layout written as hex with spaces and newlines.
func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRouteMsgDarwinBytes compares an RTM_ADD of 10.0.0.0/24 via
// interface 7 with the layout of macOS's <net/route.h>:
//
//	struct rt_msghdr {            offset
//	    u_short rtm_msglen;        0
//	    u_char  rtm_version;       2   RTM_VERSION 5
//	    u_char  rtm_type;          3   RTM_ADD 1
//	    u_short rtm_index;         4
//	    int     rtm_flags;         8   RTF_UP|RTF_STATIC|RTF_PROTO1
//	    int     rtm_addrs;        12   RTA_DST|RTA_GATEWAY|RTA_NETMASK
//	    pid_t   rtm_pid;          16
//	    int     rtm_seq;          20
//	    int     rtm_errno;        24
//	    int     rtm_use;          28
//	    u_int32_t rtm_inits;      32
//	    struct rt_metrics rtm_rmx; 36  14 x u_int32_t, rmx_mtu at 40
//	};                            92
//
// then sockaddr_in (16), sockaddr_dl (20: len, AF_LINK 18, sdl_index,
// type, nlen, alen, slen, data[12]) and the netmask's sockaddr_in, each
// rounded up to 4 bytes.
func TestRouteMsgDarwinBytes(t *testing.T) {
	m := interfaceRouteMsg(rtmAdd, netip.MustParsePrefix("10.0.0.0/24"), 7)
	m.Seq = 0x2a
	got, err := darwinLayout.marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, `
		9000 05 01 0000 0000  01880000 07000000 00000000 2a000000 00000000
		00000000 00000000
		00000000 00000000 00000000 00000000 00000000 00000000 00000000
		00000000 00000000 00000000 00000000 00000000 00000000 00000000
		10 02 0000 0a000000 0000000000000000
		14 12 0700 00 00 00 00 000000000000000000000000
		10 02 0000 ffffff00 0000000000000000`)
	if !bytes.Equal(got, want) {
		t.Errorf("darwin RTM_ADD:\n got %x\nwant %x", got, want)
	}
}

// TestRouteMsgFreeBSDBytes is the same for FreeBSD on amd64 and arm64,
// with an IPv6 host route via a gateway, as an endpoint route is:
//
//	struct rt_msghdr {            offset
//	    u_short rtm_msglen;        0
//	    u_char  rtm_version;       2
//	    u_char  rtm_type;          3
//	    u_short rtm_index;         4
//	    u_short _rtm_spare1;       6
//	    int     rtm_flags;         8   RTF_UP|RTF_GATEWAY|RTF_HOST|RTF_STATIC|RTF_PROTO1
//	    int     rtm_addrs;        12   RTA_DST|RTA_GATEWAY
//	    pid_t   rtm_pid;          16
//	    int     rtm_seq;          20
//	    int     rtm_errno;        24
//	    int     rtm_fmask;        28
//	    u_long  rtm_inits;        32
//	    struct rt_metrics rtm_rmx; 40  14 x u_long, rmx_mtu at 48
//	};                           152
//
// then two sockaddr_in6 (28: len, AF_INET6 28, port, flowinfo, addr,
// scope_id), each rounded up to 8 bytes (SA_SIZE).
func TestRouteMsgFreeBSDBytes(t *testing.T) {
	r := endpointRoute{Dst: netip.MustParseAddr("2001:db8::7"), Via: gatewayOf{Addr: netip.MustParseAddr("fe80::1%3")}}
	m := endpointRouteMsg(rtmDelete, r)
	m.Seq = 0x01020304
	got, err := freebsd64Layout.marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	zeros := strings.Repeat("00", 152-32)
	want := unhex(t, `
		d800 05 02 0000 0000  07880000 03000000 00000000 04030201 00000000
		00000000`+zeros+`
		1c 1c 0000 00000000 20010db8000000000000000000000007 00000000 00000000
		1c 1c 0000 00000000 fe800000000000000000000000000001 03000000 00000000`)
	if !bytes.Equal(got, want) {
		t.Errorf("freebsd RTM_DELETE:\n got %x\nwant %x", got, want)
	}
}

// TestRouteMsgMTUField checks where each layout keeps rmx_mtu, which
// RouteMTU reads from an RTM_GET answer.
func TestRouteMsgMTUField(t *testing.T) {
	for _, tc := range []struct {
		name string
		l    rtLayout
		off  int
		want []byte
	}{
		{"darwin", darwinLayout, 40, []byte{0xdc, 0x05, 0, 0}},
		{"freebsd", freebsd64Layout, 48, []byte{0xdc, 0x05, 0, 0, 0, 0, 0, 0}},
	} {
		b, err := tc.l.marshal(&routeMsg{Type: rtmGet, MTU: 1500, Mask: -1})
		if err != nil {
			t.Fatal(err)
		}
		if got := b[tc.off : tc.off+len(tc.want)]; !bytes.Equal(got, tc.want) {
			t.Errorf("%s: rmx_mtu bytes %x, want %x", tc.name, got, tc.want)
		}
		m, _, err := tc.l.parse(b)
		if err != nil || m.MTU != 1500 {
			t.Errorf("%s: parsed MTU %d, %v", tc.name, m.MTU, err)
		}
	}
}

// TestRouteMsgRoundTrip marshals every message the Link writes, in both
// layouts, and parses it back.
func TestRouteMsgRoundTrip(t *testing.T) {
	gw4 := gatewayOf{Addr: netip.MustParseAddr("192.0.2.254")}
	msgs := []*routeMsg{
		interfaceRouteMsg(rtmAdd, netip.MustParsePrefix("0.0.0.0/1"), 9),
		interfaceRouteMsg(rtmDelete, netip.MustParsePrefix("8000::/1"), 9),
		interfaceRouteMsg(rtmAdd, netip.MustParsePrefix("10.1.2.3/32"), 300),
		interfaceRouteMsg(rtmAdd, netip.MustParsePrefix("fd00::/64"), 2),
		endpointRouteMsg(rtmAdd, endpointRoute{Dst: netip.MustParseAddr("198.51.100.7"), Via: gw4}),
		endpointRouteMsg(rtmAdd, endpointRoute{Dst: netip.MustParseAddr("198.51.100.8"), Via: gatewayOf{Link: 4}}),
		endpointRouteMsg(rtmAdd, endpointRoute{Dst: netip.MustParseAddr("2001:db8::1"), Blackhole: true}),
		getRouteMsg(netip.IPv4Unspecified(), 0),
		getRouteMsg(netip.IPv6Unspecified(), 0),
		getRouteMsg(netip.MustParseAddr("203.0.113.9"), -1),
		{Type: rtmGet, Index: 5, Flags: rtfUp | rtfGateway, Pid: 77, Seq: -3, Errno: 3, MTU: 1400,
			Dst: netip.MustParseAddr("::"), Gateway: netip.MustParseAddr("fe80::1%2"), Mask: 0, IfpLink: 5},
	}
	for _, l := range []rtLayout{darwinLayout, freebsd64Layout} {
		for _, m := range msgs {
			b, err := l.marshal(m)
			if err != nil {
				t.Fatalf("marshal %+v: %v", m, err)
			}
			if len(b)%l.align != 0 {
				t.Errorf("length %d not a multiple of %d", len(b), l.align)
			}
			got, rest, err := l.parse(append(b, 0xee))
			if err != nil {
				t.Fatalf("parse %+v: %v", m, err)
			}
			if !bytes.Equal(rest, []byte{0xee}) {
				t.Errorf("rest %x", rest)
			}
			if !reflect.DeepEqual(got, m) {
				t.Errorf("round trip (hdr %d):\n got %+v\nwant %+v", l.hdrLen, got, m)
			}
		}
	}
}

// TestRouteMsgKernelNetmask parses netmasks the way the kernels send
// them: shortened to their last non-zero byte, without a family.
func TestRouteMsgKernelNetmask(t *testing.T) {
	for _, tc := range []struct {
		name string
		l    rtLayout
		dst  netip.Addr
		mask []byte
		want int
	}{
		{"v4 /24 short", darwinLayout, netip.MustParseAddr("10.0.0.0"), []byte{7, 0, 0, 0, 0xff, 0xff, 0xff}, 24},
		{"v4 /0 empty", darwinLayout, netip.MustParseAddr("0.0.0.0"), []byte{0}, 0},
		{"v6 /1", freebsd64Layout, netip.MustParseAddr("8000::"), []byte{9, 0, 0, 0, 0, 0, 0, 0, 0x80}, 1},
		{"v4 not contiguous", freebsd64Layout, netip.MustParseAddr("10.0.0.0"), []byte{6, 0, 0, 0, 0xff, 0x0f}, -1},
	} {
		b, err := tc.l.marshal(&routeMsg{Type: rtmGet, Dst: tc.dst, Mask: -1})
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, tc.mask...)
		b = append(b, make([]byte, tc.l.roundup(len(tc.mask))-len(tc.mask))...)
		b[0], b[1] = byte(len(b)), byte(len(b)>>8)
		b[12] |= rtaNetmask
		m, _, err := tc.l.parse(b)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if m.Mask != tc.want {
			t.Errorf("%s: mask /%d, want /%d", tc.name, m.Mask, tc.want)
		}
	}
}

func TestRouteMsgParseErrors(t *testing.T) {
	good, err := darwinLayout.marshal(interfaceRouteMsg(rtmAdd, netip.MustParsePrefix("10.0.0.0/8"), 1))
	if err != nil {
		t.Fatal(err)
	}
	badVersion := bytes.Clone(good)
	badVersion[2] = 4
	longer := bytes.Clone(good)
	longer[0]++
	shortHdr := bytes.Clone(good[:60])
	shortHdr[0] = 60
	missingSockaddr := bytes.Clone(good[:92])
	missingSockaddr[0] = 92
	for name, b := range map[string][]byte{
		"empty":            nil,
		"three bytes":      good[:3],
		"length past end":  longer,
		"version":          badVersion,
		"header cut":       shortHdr,
		"sockaddr missing": missingSockaddr,
		"length 0":         {0, 0, 5, 1},
	} {
		if m, _, err := darwinLayout.parse(b); err == nil {
			t.Errorf("%s: parsed as %+v", name, m)
		}
	}
	// Interface and address messages: only the type.
	ifinfo := []byte{8, 0, rtmVersion, rtmIfInfo, 0, 0, 0, 0}
	m, rest, err := freebsd64Layout.parse(ifinfo)
	if err != nil || m.Type != rtmIfInfo || len(rest) != 0 {
		t.Errorf("RTM_IFINFO: %+v %x %v", m, rest, err)
	}
}

func TestRouteMsgMarshalErrors(t *testing.T) {
	for name, m := range map[string]*routeMsg{
		"mapped dst":     {Type: rtmAdd, Dst: netip.MustParseAddr("::ffff:10.0.0.1"), Mask: -1},
		"mapped gateway": {Type: rtmAdd, Dst: netip.MustParseAddr("10.0.0.1"), Gateway: netip.MustParseAddr("::ffff:10.0.0.2"), Mask: -1},
		"mask too long":  {Type: rtmAdd, Dst: netip.MustParseAddr("10.0.0.1"), Mask: 33},
		"named zone":     {Type: rtmAdd, Dst: netip.MustParseAddr("fe80::1%en0"), Mask: -1},
	} {
		if _, err := freebsd64Layout.marshal(m); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// FuzzParseRouteMsg feeds the decoder what a routing socket could
// deliver: it must never panic, always consume input, and what it
// decodes as a route message must survive a marshal and parse again.
func FuzzParseRouteMsg(f *testing.F) {
	for _, l := range []rtLayout{darwinLayout, freebsd64Layout} {
		for _, m := range []*routeMsg{
			interfaceRouteMsg(rtmAdd, netip.MustParsePrefix("10.0.0.0/24"), 7),
			endpointRouteMsg(rtmAdd, endpointRoute{Dst: netip.MustParseAddr("2001:db8::7"), Via: gatewayOf{Addr: netip.MustParseAddr("fe80::1%3")}}),
			getRouteMsg(netip.IPv4Unspecified(), 0),
		} {
			b, err := l.marshal(m)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b, l.hdrLen == freebsdHdrLen)
		}
	}
	f.Add([]byte{8, 0, rtmVersion, rtmNewAddr, 0, 0, 0, 0}, false)
	f.Fuzz(func(t *testing.T, b []byte, freebsd bool) {
		l := darwinLayout
		if freebsd {
			l = freebsd64Layout
		}
		for len(b) > 0 {
			m, rest, err := l.parse(b)
			if err != nil && rest == nil {
				return
			}
			if len(rest) >= len(b) {
				t.Fatalf("no progress: %d bytes left of %d", len(rest), len(b))
			}
			b = rest
			if err != nil || m.Type < rtmAdd || m.Type > rtmGet {
				continue
			}
			enc, err := l.marshal(m)
			if err != nil {
				continue // a mapped or otherwise unwritable address
			}
			again, _, err := l.parse(enc)
			if err != nil {
				t.Fatalf("reparse of %+v: %v", m, err)
			}
			if !m.Dst.IsValid() {
				again.Mask = m.Mask // marshal writes no netmask without a destination
			}
			if !reflect.DeepEqual(again, m) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", again, m)
			}
		}
	})
}

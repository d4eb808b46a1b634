package tunnel

import (
	"context"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestMarkControl(t *testing.T) {
	if markControl(0) != nil {
		t.Error("mark 0 has a Control function")
	}
	lc := net.ListenConfig{Control: markControl(51900)}
	c, err := lc.ListenPacket(context.Background(), "udp4", "127.0.0.1:0")
	if os.Geteuid() != 0 {
		if err == nil || !strings.Contains(err.Error(), "CAP_NET_ADMIN") {
			t.Fatalf("unprivileged SO_MARK: %v, want an error naming CAP_NET_ADMIN", err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	raw, err := c.(*net.UDPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var mark int
	var gerr error
	raw.Control(func(fd uintptr) { mark, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK) })
	if gerr != nil || mark != 51900 {
		t.Fatalf("SO_MARK = %d, %v; want 51900", mark, gerr)
	}
}

func TestResolveEndpoint(t *testing.T) {
	for _, mark := range []uint32{0, 51900} {
		d := &Device{resolver: markedResolver(mark)}
		ap, err := d.resolveEndpoint(context.Background(), "localhost:51900")
		if err != nil {
			t.Fatalf("mark %d: %v", mark, err)
		}
		if want := netip.MustParseAddrPort("127.0.0.1:51900"); ap != want {
			t.Errorf("mark %d: localhost:51900 is %s, want %s (IPv4 first)", mark, ap, want)
		}
		for _, bad := range []string{"localhost", "localhost:", "localhost:99999", ":1"} {
			if ap, err := d.resolveEndpoint(context.Background(), bad); err == nil {
				t.Errorf("mark %d: %q resolved to %s", mark, bad, ap)
			}
		}
	}
}

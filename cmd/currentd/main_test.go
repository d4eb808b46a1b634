package main

import (
	"bytes"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/current-vpn/current/config"
	"github.com/current-vpn/current/tunnel"
)

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"-c"}, {"-c", "x", "extra"}, {"-c", "x", "--log-format", "xml"}, {"-c", "x", "--log-level", "loud"}} {
		var out bytes.Buffer
		if code := run(args, &out); code != 2 {
			t.Errorf("%q: exit %d, want 2 (%s)", args, code, out.String())
		}
	}
	var out bytes.Buffer
	if code := run([]string{"-c", filepath.Join(t.TempDir(), "missing.toml"), "--log-format", "json"}, &out); code != 1 || !strings.Contains(out.String(), `"level":"ERROR"`) {
		t.Errorf("missing file: exit %d, log %s", code, out.String())
	}
}

func TestSdNotify(t *testing.T) {
	if err := sdNotify("READY=1"); err != nil {
		t.Fatalf("without NOTIFY_SOCKET: %v", err)
	}
	sock := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	if err := sdNotify("READY=1"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("got %q, %v", buf[:n], err)
	}
}

func TestTunnelConfig(t *testing.T) {
	k, err := config.GeneratePrivateKey(config.DefaultSuite)
	if err != nil {
		t.Fatal(err)
	}
	peer, _ := config.GeneratePrivateKey(config.DefaultSuite)
	ppub, _ := peer.Public()
	ep, _ := config.ParseEndpoint("[2001:db8::1]:51900")
	cfg := &config.Config{
		Interface: config.Interface{Suite: config.DefaultSuite, PrivateKey: k, ListenPort: 51900, Addresses: []netip.Prefix{netip.MustParsePrefix("10.1.0.1/24")}},
		Peers:     []config.Peer{{Name: "p", PublicKey: ppub, Endpoint: ep, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.1.0.2/32")}, Transport: config.TransportTCP}},
	}
	var log bytes.Buffer
	l, _ := newLogger(&log, "text", "info")
	tc := tunnelConfig(cfg, l)
	if tc.MTU < 1280 || tc.ListenPort != 51900 || len(tc.Peers) != 1 || tc.Peers[0].Endpoint != "[2001:db8::1]:51900" || !bytes.Equal(tc.Peers[0].PublicKey, ppub.Bytes()) {
		t.Fatalf("%+v", tc)
	}
	if log.Len() != 0 {
		t.Errorf("unexpected warning: %s", log.String())
	}
	cfg.Peers[0].Transport = config.TransportAuto
	cfg.Peers[0].PersistentKeepalive = 25 * time.Second
	if tc := tunnelConfig(cfg, l); tc.Peers[0].Transport != tunnel.TransportAuto || tc.Peers[0].PersistentKeepalive != 25*time.Second {
		t.Errorf("%+v", tc.Peers[0])
	}
}

func TestDeriveMTU(t *testing.T) {
	l, _ := newLogger(io.Discard, "text", "info")
	ep4, _ := config.ParseEndpoint("192.0.2.1:1")
	ep6, _ := config.ParseEndpoint("[2001:db8::1]:1")
	name, _ := config.ParseEndpoint("vpn.example.net:1")
	route := func(a netip.Addr) (int, error) {
		if a.Is4() {
			return 1500, nil
		}
		return 9000, nil
	}
	for _, c := range []struct {
		peers []config.Peer
		want  int
	}{
		{nil, defaultMTU},
		{[]config.Peer{{Endpoint: name}}, defaultMTU},
		{[]config.Peer{{Endpoint: ep4}}, 1500 - 20 - 8 - 32},
		{[]config.Peer{{Endpoint: ep6}, {Endpoint: ep4}}, 1500 - 20 - 8 - 32},
		{[]config.Peer{{Endpoint: ep6}}, 9000 - 40 - 8 - 32},
	} {
		if got := deriveMTU(c.peers, route, l); got != c.want {
			t.Errorf("%v: %d, want %d", c.peers, got, c.want)
		}
	}
	small := func(netip.Addr) (int, error) { return 1300, nil }
	if got := deriveMTU([]config.Peer{{Endpoint: ep4}}, small, l); got != 1280 {
		t.Errorf("floor: %d", got)
	}
}
